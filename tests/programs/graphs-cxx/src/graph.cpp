#include "graph.hpp"

#include <algorithm>

namespace graphs {

Graph::Graph(vid vertices, std::vector<Edge> edges) {
    // Counting sort of the edges by source, then by target within a source (stable layout).
    std::sort(edges.begin(), edges.end(), [](const Edge &a, const Edge &b) {
        return a.from != b.from ? a.from < b.from : a.to < b.to;
    });
    offsets_.assign(vertices + 1, 0);
    for (const Edge &e : edges)
        ++offsets_[e.from + 1];
    for (vid v = 0; v < vertices; ++v)
        offsets_[v + 1] += offsets_[v];
    targets_.resize(edges.size());
    weights_.resize(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
        targets_[i] = edges[i].to;
        weights_[i] = edges[i].weight;
    }
}

Graph Graph::transposed() const {
    std::vector<Edge> rev;
    rev.reserve(edges());
    for (vid v = 0; v < size(); ++v)
        for_each_out(v, [&](vid to, float w) { rev.push_back({to, v, w}); });
    return Graph(size(), std::move(rev));
}

}  // namespace graphs
