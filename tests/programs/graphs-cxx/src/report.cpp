#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace graphs {

namespace {
std::string format(const char *fmt, double a, double b, double c) {
    char buf[160];
    std::snprintf(buf, sizeof buf, fmt, a, b, c);
    return buf;
}
}  // namespace

void Report::levels(const std::string &name, const std::vector<std::uint32_t> &levels) {
    std::uint32_t reached = 0, deepest = 0;
    double sum = 0;
    for (std::uint32_t l : levels)
        if (l != UINT32_MAX) {
            ++reached;
            deepest = std::max(deepest, l);
            sum += l;
        }
    lines_.push_back(name + format(": reached %.0f, depth %.0f, mean level %.4f", reached, deepest,
                                   reached ? sum / reached : 0.0));
}

void Report::distances(const std::string &name, const std::vector<float> &dist) {
    double sum = 0, far = 0, reached = 0;
    for (float d : dist)
        if (std::isfinite(d)) {
            sum += d;
            far = std::max(far, double(d));
            ++reached;
        }
    lines_.push_back(name + format(": reached %.0f, farthest %.3f, mean %.3f", reached, far, reached ? sum / reached : 0.0));
}

void Report::ranks(const std::string &name, const std::vector<double> &rank) {
    std::vector<double> sorted(rank);
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    double total = 0;
    for (double r : rank)
        total += r;
    lines_.push_back(name + format(": total %.6f, top %.6e, median %.6e", total, sorted.front(), sorted[sorted.size() / 2]));
}

void Report::components(const std::string &name, const std::vector<vid> &rep) {
    std::map<vid, std::uint32_t> sizes;
    for (vid r : rep)
        ++sizes[r];
    std::uint32_t largest = 0;
    for (const auto &kv : sizes)
        largest = std::max(largest, kv.second);
    lines_.push_back(name + format(": components %.0f, largest %.0f, singletons %.0f", sizes.size(), largest,
                                   std::count_if(sizes.begin(), sizes.end(), [](const auto &kv) { return kv.second == 1; })));
}

void Report::print() const {
    for (const std::string &l : lines_)
        std::puts(l.c_str());
}

}  // namespace graphs
