// A d-ary min-heap keyed by priority, with decrease-key through a position index: the priority
// queue of Dijkstra's algorithm.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

namespace graphs {

template <typename Key, unsigned Arity = 4>
class IndexedHeap {
public:
    explicit IndexedHeap(std::uint32_t n) : pos_(n, npos) {}

    bool empty() const { return items_.empty(); }

    void push_or_decrease(std::uint32_t id, Key key) {
        std::uint32_t p = pos_[id];
        if (p == npos) {
            p = static_cast<std::uint32_t>(items_.size());
            items_.push_back({key, id});
            pos_[id] = p;
        } else if (key < items_[p].key) {
            items_[p].key = key;
        } else {
            return;
        }
        sift_up(p);
    }

    std::uint32_t pop(Key &key) {
        Item top = items_.front();
        key = top.key;
        pos_[top.id] = npos - 1;  // settled: never pushed again by the caller
        Item last = items_.back();
        items_.pop_back();
        if (!items_.empty()) {
            items_[0] = last;
            pos_[last.id] = 0;
            sift_down(0);
        }
        return top.id;
    }

    bool settled(std::uint32_t id) const { return pos_[id] == npos - 1; }

private:
    struct Item {
        Key key;
        std::uint32_t id;
    };
    static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

    void place(std::uint32_t i, const Item &it) {
        items_[i] = it;
        pos_[it.id] = i;
    }
    void sift_up(std::uint32_t i) {
        Item it = items_[i];
        while (i > 0) {
            std::uint32_t parent = (i - 1) / Arity;
            if (!(it.key < items_[parent].key))
                break;
            place(i, items_[parent]);
            i = parent;
        }
        place(i, it);
    }
    void sift_down(std::uint32_t i) {
        Item it = items_[i];
        const std::uint32_t n = static_cast<std::uint32_t>(items_.size());
        for (;;) {
            std::uint32_t first = i * Arity + 1, best = n;
            for (std::uint32_t c = first; c < first + Arity && c < n; ++c)
                if (best == n || items_[c].key < items_[best].key)
                    best = c;
            if (best == n || !(items_[best].key < it.key))
                break;
            place(i, items_[best]);
            i = best;
        }
        place(i, it);
    }

    std::vector<Item> items_;
    std::vector<std::uint32_t> pos_;
};

}  // namespace graphs
