#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "dsl/dag.h"

using namespace sluice::dsl;

namespace {
std::vector<DagNode> plain_nodes(uint32_t n) {
  std::vector<DagNode> nodes;
  for (uint32_t i = 0; i < n; ++i) nodes.push_back(DagNode{"n" + std::to_string(i), i, {}});
  return nodes;
}
Dag must_build(std::vector<DagNode> nodes, std::vector<Edge> edges) {
  Dag dag;
  std::vector<uint32_t> cycle;
  REQUIRE(Dag::build(std::move(nodes), std::move(edges), dag, cycle));
  return dag;
}
}  // namespace

TEST_CASE("dag: topological order respects every edge on random DAGs") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const uint32_t n = 1 + rng() % 200;
    std::vector<Edge> edges;
    for (uint32_t to = 1; to < n; ++to)
      for (int k = 0; k < 3; ++k) edges.emplace_back(rng() % to, to);
    Dag dag = must_build(plain_nodes(n), edges);
    REQUIRE(dag.size() == n);
    std::vector<uint32_t> position(n);
    const auto& topo = dag.topological_order();
    REQUIRE(topo.size() == n);
    for (uint32_t i = 0; i < n; ++i) position[topo[i]] = i;
    for (const Edge& e : edges) CHECK(position[e.first] < position[e.second]);
  }
}

TEST_CASE("dag: duplicate edges are dropped - predecessors, successors, roots, leaves") {
  Dag dag = must_build(plain_nodes(4), {{0, 1}, {0, 1}, {0, 2}, {1, 3}, {2, 3}});
  CHECK(dag.edge_count() == 4);
  auto p3 = dag.predecessors(3);
  CHECK(std::vector<uint32_t>(p3.begin(), p3.end()) == std::vector<uint32_t>{1, 2});
  auto s0 = dag.successors(0);
  CHECK(std::vector<uint32_t>(s0.begin(), s0.end()) == std::vector<uint32_t>{1, 2});
  CHECK(dag.roots() == std::vector<uint32_t>{0});
  CHECK(dag.leaves() == std::vector<uint32_t>{3});
  CHECK(dag.find("n2") == 2);
  CHECK(dag.find("nope") == -1);
}

TEST_CASE("dag: find_cycle returns the cycle's path in edge order") {
  // 0 -> 1 -> 2 -> 3 -> 1, and 0 -> 4
  std::vector<uint32_t> cycle = Dag::find_cycle(5, {{0, 1}, {1, 2}, {2, 3}, {3, 1}, {0, 4}});
  CHECK(cycle == std::vector<uint32_t>{1, 2, 3});
  CHECK(Dag::find_cycle(3, {{0, 1}, {1, 2}}).empty());
}

TEST_CASE("dag: a 100,000-long chain neither overflows the stack nor misses its cycle") {
  const uint32_t n = 100'000;
  std::vector<Edge> edges;
  for (uint32_t i = 0; i + 1 < n; ++i) edges.emplace_back(i, i + 1);
  CHECK(Dag::find_cycle(n, edges).empty());
  Dag dag = must_build(plain_nodes(n), edges);
  CHECK(dag.topological_order().front() == 0);
  CHECK(dag.topological_order().back() == n - 1);
  edges.emplace_back(n - 1, 0);
  CHECK(Dag::find_cycle(n, edges).size() == n);
  Dag cyclic;
  std::vector<uint32_t> cycle;
  CHECK_FALSE(Dag::build(plain_nodes(n), edges, cyclic, cycle));
  CHECK(cycle.size() == n);
}
