#include <random>

#include "graph.hpp"

namespace graphs {

namespace {
// Uniform integers from raw mt19937 output (the library's distributions differ between
// implementations; the engine's sequence does not).
struct Draw {
    std::mt19937 engine;
    explicit Draw(std::uint32_t seed) : engine(seed) {}
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>((std::uint64_t(engine()) * n) >> 32); }
    float weight() { return 1.0f + static_cast<float>(engine() >> 8) * (1.0f / 16777216.0f) * 99.0f; }
};
}  // namespace

Graph random_graph(vid vertices, unsigned avg_degree, std::uint32_t seed) {
    Draw d(seed);
    std::vector<Edge> edges;
    edges.reserve(std::size_t(vertices) * avg_degree);
    for (vid v = 0; v < vertices; ++v) {
        unsigned deg = 1 + d.below(2 * avg_degree);
        for (unsigned k = 0; k < deg; ++k) {
            // Half the edges stay near v (locality), half go anywhere (small-world shortcuts).
            vid to = (k & 1) ? d.below(vertices) : (v + 1 + d.below(64)) % vertices;
            edges.push_back({v, to, d.weight()});
        }
    }
    return Graph(vertices, std::move(edges));
}

Graph grid_graph(vid side, std::uint32_t seed) {
    Draw d(seed);
    std::vector<Edge> edges;
    auto id = [side](vid r, vid c) { return r * side + c; };
    for (vid r = 0; r < side; ++r)
        for (vid c = 0; c < side; ++c) {
            if (c + 1 < side) {
                edges.push_back({id(r, c), id(r, c + 1), d.weight()});
                edges.push_back({id(r, c + 1), id(r, c), d.weight()});
            }
            if (r + 1 < side) {
                edges.push_back({id(r, c), id(r + 1, c), d.weight()});
                edges.push_back({id(r + 1, c), id(r, c), d.weight()});
            }
        }
    return Graph(side * side, std::move(edges));
}

}  // namespace graphs
