#include <limits>

#include "graph.hpp"

namespace graphs {

// Level-synchronous breadth-first search with an explicit frontier.
std::vector<std::uint32_t> bfs_levels(const Graph &g, vid source) {
    constexpr std::uint32_t unseen = std::numeric_limits<std::uint32_t>::max();
    std::vector<std::uint32_t> level(g.size(), unseen);
    std::vector<vid> frontier{source}, next;
    level[source] = 0;
    for (std::uint32_t depth = 1; !frontier.empty(); ++depth) {
        next.clear();
        for (vid v : frontier)
            g.for_each_out(v, [&](vid to, float) {
                if (level[to] == unseen) {
                    level[to] = depth;
                    next.push_back(to);
                }
            });
        frontier.swap(next);
    }
    return level;
}

}  // namespace graphs
