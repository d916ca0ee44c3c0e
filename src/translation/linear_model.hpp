// Seed 004's linear model of page-walk cycles (its Table IV), evaluated from the counts of a
// native run and the cycles per walk of native and base virtualized runs:
//
//   Direct Segment  C_n (1 - F_DS) M_n
//   Dual Direct     C_n (1 - F_DD) M_n      (blank in the seed's table; memvirt uses the
//                                            direct-segment form with F_DD, the share of native
//                                            misses inside both segments)
//   VMM Direct      [(C_n + d_VD) F_VD + C_v (1 - F_VD)] M_n
//   Guest Direct    [(C_n + d_GD) F_GD + C_v (1 - F_GD)] M_n
//
// C_n, C_v: cycles per native and per base-virtualized walk; M_n: native misses (walks);
// F: share of misses inside the segment(s) (see segment_share); d: the added cycles of the
// segment adds.
#pragma once

#include <optional>

#include "translation/translator.hpp"

namespace memvirt::translation {

struct LinearModelInputs {
  double native_cycles_per_walk = 0;       // C_n
  double virtualized_cycles_per_walk = 0;  // C_v
  double native_walks = 0;                 // M_n
  double f_guest_segment = 0;              // F_DS = F_GD
  double f_vmm_segment = 0;                // F_VD
  double f_both = 0;                       // F_DD
  double delta_vmm_direct = 0;             // d_VD
  double delta_guest_direct = 0;           // d_GD
};

// F of a configuration, from its own run (so it reflects that configuration's contiguity):
// the share of L1 misses the segments resolve for the modes that skip the L2 TLB on a segment
// hit (direct segment, Dual Direct), the share of walks inside the segment for the others.
inline std::optional<double> segment_share(Mode mode, const TranslatorStats& st) {
  const auto walks = static_cast<double>(st.walks);
  const auto segment = static_cast<double>(st.segment_translations);
  const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  switch (mode) {
    case Mode::kDirectSegment:
    case Mode::kDualDirect:
      return ratio(segment, segment + walks);
    case Mode::kGuestDirect:
      return ratio(static_cast<double>(st.walks_in_guest_segment), walks);
    case Mode::kVmmDirect:
      return ratio(static_cast<double>(st.walks_in_vmm_segment), walks);
    default:
      return std::nullopt;
  }
}

// Predicted walk cycles of `mode`; nullopt for the base modes (they are the model's inputs).
inline std::optional<double> linear_model_cycles(Mode mode, const LinearModelInputs& in) {
  const double cn = in.native_cycles_per_walk, cv = in.virtualized_cycles_per_walk;
  switch (mode) {
    case Mode::kDirectSegment:
      return cn * (1 - in.f_guest_segment) * in.native_walks;
    case Mode::kDualDirect:
      return cn * (1 - in.f_both) * in.native_walks;
    case Mode::kVmmDirect:
      return ((cn + in.delta_vmm_direct) * in.f_vmm_segment + cv * (1 - in.f_vmm_segment)) *
             in.native_walks;
    case Mode::kGuestDirect:
      return ((cn + in.delta_guest_direct) * in.f_guest_segment + cv * (1 - in.f_guest_segment)) *
             in.native_walks;
    default:
      return std::nullopt;
  }
}

}  // namespace memvirt::translation
