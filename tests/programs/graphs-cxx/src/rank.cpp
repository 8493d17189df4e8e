#include <numeric>

#include "graph.hpp"

namespace graphs {

// Power iteration over the transposed graph (pull form): each vertex sums its in-neighbours'
// rank divided by their out-degree.  Dangling vertices spread their rank evenly.
std::vector<double> pagerank(const Graph &g, unsigned iterations, double damping) {
    const vid n = g.size();
    Graph in = g.transposed();
    std::vector<double> rank(n, 1.0 / n), contrib(n), next(n);
    std::vector<double> inv_degree(n);
    for (vid v = 0; v < n; ++v)
        inv_degree[v] = g.degree(v) ? 1.0 / g.degree(v) : 0.0;
    for (unsigned it = 0; it < iterations; ++it) {
        double dangling = 0.0;
        for (vid v = 0; v < n; ++v) {
            contrib[v] = rank[v] * inv_degree[v];
            if (!g.degree(v))
                dangling += rank[v];
        }
        const double base = (1.0 - damping) / n + damping * dangling / n;
        for (vid v = 0; v < n; ++v) {
            double sum = 0.0;
            in.for_each_out(v, [&](vid from, float) { sum += contrib[from]; });
            next[v] = base + damping * sum;
        }
        rank.swap(next);
    }
    return rank;
}

}  // namespace graphs
