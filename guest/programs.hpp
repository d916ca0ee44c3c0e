// The guest programs, one entry point each. The host's lab plan writes their command lines;
// each mirrors the simulator workload of the same name (src/workload/).
#pragma once

#include "args.hpp"

namespace guest {

int memhog_main(Args& a);
int periodic_alloc_main(Args& a);
int page_fault_main(Args& a);
int trace_main(Args& a);
int meminfo_main(Args& a);
int file_reader_main(Args& a);
int pages_main(Args& a);

}  // namespace guest
