#include <numeric>

#include "graph.hpp"

namespace graphs {

namespace {
// Union-find with path halving and union by size.
class DisjointSets {
public:
    explicit DisjointSets(vid n) : parent_(n), size_(n, 1) { std::iota(parent_.begin(), parent_.end(), 0); }
    vid find(vid x) {
        while (parent_[x] != x) {
            parent_[x] = parent_[parent_[x]];
            x = parent_[x];
        }
        return x;
    }
    void unite(vid a, vid b) {
        a = find(a);
        b = find(b);
        if (a == b)
            return;
        if (size_[a] < size_[b])
            std::swap(a, b);
        parent_[b] = a;
        size_[a] += size_[b];
    }

private:
    std::vector<vid> parent_;
    std::vector<std::uint32_t> size_;
};
}  // namespace

// Weakly connected components: the representative of each vertex's component (its smallest id).
std::vector<vid> weak_components(const Graph &g) {
    DisjointSets sets(g.size());
    for (vid v = 0; v < g.size(); ++v)
        g.for_each_out(v, [&](vid to, float) { sets.unite(v, to); });
    std::vector<vid> smallest(g.size(), g.size()), out(g.size());
    for (vid v = 0; v < g.size(); ++v) {
        vid r = sets.find(v);
        if (v < smallest[r])
            smallest[r] = v;
    }
    for (vid v = 0; v < g.size(); ++v)
        out[v] = smallest[sets.find(v)];
    return out;
}

}  // namespace graphs
