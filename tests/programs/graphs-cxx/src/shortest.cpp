#include <limits>

#include "graph.hpp"
#include "heap.hpp"

namespace graphs {

std::vector<float> dijkstra(const Graph &g, vid source) {
    std::vector<float> dist(g.size(), std::numeric_limits<float>::infinity());
    IndexedHeap<float> heap(g.size());
    dist[source] = 0.0f;
    heap.push_or_decrease(source, 0.0f);
    while (!heap.empty()) {
        float d;
        vid v = heap.pop(d);
        g.for_each_out(v, [&](vid to, float w) {
            float nd = d + w;
            if (nd < dist[to] && !heap.settled(to)) {
                dist[to] = nd;
                heap.push_or_decrease(to, nd);
            }
        });
    }
    return dist;
}

}  // namespace graphs
