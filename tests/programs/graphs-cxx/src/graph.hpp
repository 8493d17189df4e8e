// A directed graph in compressed sparse row form, with edge weights.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace graphs {

using vid = std::uint32_t;

struct Edge {
    vid from, to;
    float weight;
};

class Graph {
public:
    Graph() = default;
    Graph(vid vertices, std::vector<Edge> edges);

    vid size() const { return static_cast<vid>(offsets_.size() - 1); }
    std::size_t edges() const { return targets_.size(); }

    // The out-neighbours of v and their weights, as [begin, end) ranges.
    template <typename F>
    void for_each_out(vid v, F &&f) const {
        for (std::uint32_t i = offsets_[v], e = offsets_[v + 1]; i < e; ++i)
            f(targets_[i], weights_[i]);
    }
    std::uint32_t degree(vid v) const { return offsets_[v + 1] - offsets_[v]; }

    Graph transposed() const;

private:
    std::vector<std::uint32_t> offsets_{0};
    std::vector<vid> targets_;
    std::vector<float> weights_;
};

// generate.cpp: deterministic graphs (std::mt19937's sequence is fixed by the standard).
Graph random_graph(vid vertices, unsigned avg_degree, std::uint32_t seed);
Graph grid_graph(vid side, std::uint32_t seed);

// Algorithms (one file each).
std::vector<std::uint32_t> bfs_levels(const Graph &g, vid source);
std::vector<float> dijkstra(const Graph &g, vid source);
std::vector<double> pagerank(const Graph &g, unsigned iterations, double damping);
std::vector<vid> weak_components(const Graph &g);

}  // namespace graphs
