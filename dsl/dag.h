#pragma once
// The workflow's DAG over matrix-expanded step instances, built once with
// Boost.Graph and immutable afterwards. Node ids are dense (0..size-1) and
// follow step declaration order, matrix instances in sorted-key order.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dsl/value.h"

namespace sluice::dsl {

struct DagNode {
  std::string name;   // "train" or "train[depth=4,lr=0.05]"
  uint32_t step = 0;  // index into Workflow::steps
  std::vector<std::pair<std::string, Value>> matrix;  // bindings, sorted by key
};

using Edge = std::pair<uint32_t, uint32_t>;  // from -> to (`to` needs `from`)

class Dag {
 public:
  Dag();
  ~Dag();
  Dag(Dag&&) noexcept;
  Dag& operator=(Dag&&) noexcept;

  // Builds the graph from `edges` (duplicates are dropped). When the edges
  // form a cycle, returns false and fills `cycle` as find_cycle does. One
  // depth-first search yields both the order and the cycle check: linear in
  // nodes + edges.
  static bool build(std::vector<DagNode> nodes, std::vector<Edge> edges, Dag& out, std::vector<uint32_t>& cycle);

  size_t size() const { return nodes_.size(); }
  size_t edge_count() const { return succ_.size(); }
  const DagNode& node(uint32_t id) const { return nodes_[id]; }
  const std::vector<DagNode>& nodes() const { return nodes_; }
  std::span<const uint32_t> predecessors(uint32_t id) const;
  std::span<const uint32_t> successors(uint32_t id) const;
  // Dependencies first; among independent nodes, declaration order.
  const std::vector<uint32_t>& topological_order() const { return topo_; }
  std::vector<uint32_t> roots() const;
  std::vector<uint32_t> leaves() const;
  // Instances of one step, in node order.
  std::span<const uint32_t> instances(uint32_t step) const;
  int64_t find(std::string_view name) const;  // node id or -1

  // On a graph of `n` vertices, a cycle as vertex ids in edge order
  // (first == last omitted), or empty when there is none. Iterative: safe on
  // 100,000-long chains.
  static std::vector<uint32_t> find_cycle(uint32_t n, const std::vector<Edge>& edges);

 private:
  std::vector<DagNode> nodes_;
  // Compressed adjacency (CSR) derived from the Boost graph.
  std::vector<uint32_t> pred_offsets_, pred_, succ_offsets_, succ_;
  std::vector<uint32_t> topo_;
  std::vector<uint32_t> step_offsets_, step_nodes_;
};

}  // namespace sluice::dsl
