#pragma once
#include <string>
#include <vector>

#include "graph.hpp"

namespace graphs {

// Order-independent summaries of an algorithm's result, printed one per line.
class Report {
public:
    void levels(const std::string &name, const std::vector<std::uint32_t> &levels);
    void distances(const std::string &name, const std::vector<float> &dist);
    void ranks(const std::string &name, const std::vector<double> &rank);
    void components(const std::string &name, const std::vector<vid> &rep);
    void print() const;

private:
    std::vector<std::string> lines_;
};

}  // namespace graphs
