#include "guest/page_list.hpp"

#include <stdexcept>

namespace memvirt {

std::uint32_t PageListPool::new_node(Gfn gfn) {
  std::uint32_t n = 0;
  if (!free_.empty()) {
    n = free_.back();
    free_.pop_back();
  } else {
    if (nodes_.size() > PageMeta::kMaxNode) {
      throw std::length_error("guest page lists exceed 2^24 entries (guest too large)");
    }
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back({});
  }
  nodes_[n] = Node{0, 0, gfn.value()};
  return n;
}

std::uint32_t PageListPool::push_front(PageList& list, Gfn gfn) {
  const std::uint32_t n = new_node(gfn);
  nodes_[n].next = list.head;
  if (list.head != 0) nodes_[list.head].prev = n;
  list.head = n;
  if (list.tail == 0) list.tail = n;
  ++list.count;
  return n;
}

std::uint32_t PageListPool::push_back(PageList& list, Gfn gfn) {
  const std::uint32_t n = new_node(gfn);
  nodes_[n].prev = list.tail;
  if (list.tail != 0) nodes_[list.tail].next = n;
  list.tail = n;
  if (list.head == 0) list.head = n;
  ++list.count;
  return n;
}

void PageListPool::remove(PageList& list, std::uint32_t n) {
  Node& node = nodes_[n];
  if (node.prev != 0) {
    nodes_[node.prev].next = node.next;
  } else {
    list.head = node.next;
  }
  if (node.next != 0) {
    nodes_[node.next].prev = node.prev;
  } else {
    list.tail = node.prev;
  }
  --list.count;
  free_.push_back(n);
}

void PageListPool::rotate_to_front(PageList& list, std::uint32_t n) {
  if (list.head == n || n == 0) return;
  // Close the ring (tail -> head), then cut it just before n.
  const std::uint32_t before = nodes_[n].prev;
  nodes_[list.tail].next = list.head;
  nodes_[list.head].prev = list.tail;
  nodes_[before].next = 0;
  nodes_[n].prev = 0;
  list.head = n;
  list.tail = before;
}

}  // namespace memvirt
