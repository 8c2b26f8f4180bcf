#include "dsl/dag.h"

#include <algorithm>
#include <unordered_map>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>

namespace sluice::dsl {

namespace {

// Out-edges only: predecessors come from the CSR arrays built beside it.
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

// Records the DFS stack so a back edge yields the cycle's path, and the
// finish order, whose reverse is a topological order.
struct OrderVisitor : boost::default_dfs_visitor {
  std::vector<Vertex>* stack;
  std::vector<Vertex>* cycle;
  std::vector<uint32_t>* finished;
  void discover_vertex(Vertex v, const Graph&) const { stack->push_back(v); }
  void finish_vertex(Vertex v, const Graph&) const {
    stack->pop_back();
    finished->push_back(static_cast<uint32_t>(v));
  }
  void back_edge(boost::graph_traits<Graph>::edge_descriptor e, const Graph& g) const {
    if (!cycle->empty()) return;
    Vertex to = boost::target(e, g);
    auto it = std::find(stack->begin(), stack->end(), to);
    cycle->assign(it, stack->end());
  }
};

void build_csr(uint32_t n, const std::vector<Edge>& edges, bool by_target,
               std::vector<uint32_t>& offsets, std::vector<uint32_t>& out) {
  offsets.assign(n + 1, 0);
  for (const Edge& e : edges) ++offsets[(by_target ? e.second : e.first) + 1];
  for (uint32_t i = 0; i < n; ++i) offsets[i + 1] += offsets[i];
  out.resize(edges.size());
  std::vector<uint32_t> fill(offsets.begin(), offsets.end() - 1);
  for (const Edge& e : edges) {
    uint32_t key = by_target ? e.second : e.first;
    out[fill[key]++] = by_target ? e.first : e.second;
  }
}

// Depth-first search over `n` vertices; false with `cycle` set on a cycle.
bool order(uint32_t n, const std::vector<Edge>& edges, std::vector<uint32_t>& topo, std::vector<uint32_t>& cycle) {
  Graph g(edges.begin(), edges.end(), n);
  std::vector<Vertex> stack, found;
  std::vector<uint32_t> finished;
  finished.reserve(n);
  OrderVisitor vis;
  vis.stack = &stack;
  vis.cycle = &found;
  vis.finished = &finished;
  std::vector<boost::default_color_type> colors(n);
  boost::depth_first_search(
      g, boost::visitor(vis).color_map(boost::make_iterator_property_map(colors.begin(), boost::get(boost::vertex_index, g))));
  cycle.assign(found.begin(), found.end());
  if (!cycle.empty()) return false;
  topo.assign(finished.rbegin(), finished.rend());
  return true;
}

}  // namespace

Dag::Dag() = default;
Dag::~Dag() = default;
Dag::Dag(Dag&&) noexcept = default;
Dag& Dag::operator=(Dag&&) noexcept = default;

bool Dag::build(std::vector<DagNode> nodes, std::vector<Edge> edges, Dag& dag, std::vector<uint32_t>& cycle) {
  const auto n = static_cast<uint32_t>(nodes.size());
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  std::vector<uint32_t> dfs_order;
  if (!order(n, edges, dfs_order, cycle)) return false;

  build_csr(n, edges, true, dag.pred_offsets_, dag.pred_);
  build_csr(n, edges, false, dag.succ_offsets_, dag.succ_);
  // The order users see (--dry-run, schedulers' tie-breaks): Kahn's algorithm
  // in declaration order, so independent nodes keep the order of the file.
  std::vector<uint32_t> indegree(n);
  for (uint32_t i = 0; i < n; ++i) indegree[i] = dag.pred_offsets_[i + 1] - dag.pred_offsets_[i];
  dag.topo_.clear();
  for (uint32_t i = 0; i < n; ++i)
    if (indegree[i] == 0) dag.topo_.push_back(i);
  for (size_t head = 0; head < dag.topo_.size(); ++head) {
    uint32_t v = dag.topo_[head];
    for (uint32_t k = dag.succ_offsets_[v]; k < dag.succ_offsets_[v + 1]; ++k)
      if (--indegree[dag.succ_[k]] == 0) dag.topo_.push_back(dag.succ_[k]);
  }

  uint32_t steps = 0;
  for (const DagNode& node : nodes) steps = std::max(steps, node.step + 1);
  std::vector<Edge> by_step;
  by_step.reserve(n);
  for (uint32_t i = 0; i < n; ++i) by_step.emplace_back(nodes[i].step, i);
  build_csr(steps, by_step, false, dag.step_offsets_, dag.step_nodes_);

  dag.nodes_ = std::move(nodes);
  return true;
}

std::span<const uint32_t> Dag::predecessors(uint32_t id) const {
  return {pred_.data() + pred_offsets_[id], pred_offsets_[id + 1] - pred_offsets_[id]};
}

std::span<const uint32_t> Dag::successors(uint32_t id) const {
  return {succ_.data() + succ_offsets_[id], succ_offsets_[id + 1] - succ_offsets_[id]};
}

std::span<const uint32_t> Dag::instances(uint32_t step) const {
  if (step + 1 >= step_offsets_.size()) return {};
  return {step_nodes_.data() + step_offsets_[step], step_offsets_[step + 1] - step_offsets_[step]};
}

std::vector<uint32_t> Dag::roots() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < size(); ++i)
    if (predecessors(i).empty()) out.push_back(i);
  return out;
}

std::vector<uint32_t> Dag::leaves() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < size(); ++i)
    if (successors(i).empty()) out.push_back(i);
  return out;
}

int64_t Dag::find(std::string_view name) const {
  for (uint32_t i = 0; i < size(); ++i)
    if (nodes_[i].name == name) return i;
  return -1;
}

std::vector<uint32_t> Dag::find_cycle(uint32_t n, const std::vector<Edge>& edges) {
  std::vector<uint32_t> topo, cycle;
  order(n, edges, topo, cycle);
  return cycle;
}

}  // namespace sluice::dsl
