// Doubly linked lists of guest pages, as Linux's list_head through page->lru, but with the
// nodes in a pool: only pages that are on a list (free block heads, per-CPU pages) hold a node,
// and the page's metadata keeps the node's index. Supports what the kernel does to such lists:
// add at head or tail, delete from anywhere, take the first or last, rotate to a given entry.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.hpp"
#include "guest/page_meta.hpp"

namespace memvirt {

class PageListPool;

struct PageList {
  std::uint32_t head = 0;  // node index, 0 = empty
  std::uint32_t tail = 0;
  std::uint32_t count = 0;
  [[nodiscard]] bool empty() const { return count == 0; }
};

class PageListPool {
 public:
  PageListPool() { nodes_.push_back({}); }  // node 0 is the null node

  // Each returns the node now holding `gfn`; the caller stores it in the page's metadata.
  std::uint32_t push_front(PageList& list, Gfn gfn);
  std::uint32_t push_back(PageList& list, Gfn gfn);
  void remove(PageList& list, std::uint32_t node);
  [[nodiscard]] Gfn gfn(std::uint32_t node) const { return Gfn{nodes_[node].gfn}; }
  [[nodiscard]] std::uint32_t next(std::uint32_t node) const { return nodes_[node].next; }
  [[nodiscard]] std::uint32_t prev(std::uint32_t node) const { return nodes_[node].prev; }
  // list_rotate_to_front: `node` becomes the head; the entries before it move, in order, to
  // the tail.
  void rotate_to_front(PageList& list, std::uint32_t node);
  [[nodiscard]] std::uint64_t memory_bytes() const {
    return nodes_.capacity() * sizeof(Node) + free_.capacity() * sizeof(std::uint32_t);
  }
  [[nodiscard]] std::size_t live_nodes() const { return nodes_.size() - 1 - free_.size(); }

 private:
  struct Node {
    std::uint32_t prev = 0, next = 0, gfn = 0;
  };
  std::uint32_t new_node(Gfn gfn);
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_;
};

}  // namespace memvirt
