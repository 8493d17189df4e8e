// graphs N: run BFS, Dijkstra, PageRank and connected components on N random graphs and one grid.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "graph.hpp"
#include "report.hpp"

int main(int argc, char **argv) {
    int rounds = argc > 1 ? std::atoi(argv[1]) : 1;
    if (rounds < 1) {
        std::fprintf(stderr, "usage: graphs ROUNDS (>= 1)\n");
        return 2;
    }
    graphs::Report report;
    for (int r = 0; r < rounds; ++r) {
        std::string tag = "random#" + std::to_string(r);
        graphs::Graph g = graphs::random_graph(60000, 6, 1234u + r);
        report.levels(tag + " bfs", graphs::bfs_levels(g, 0));
        report.distances(tag + " dijkstra", graphs::dijkstra(g, 0));
        report.ranks(tag + " pagerank", graphs::pagerank(g, 20, 0.85));
        report.components(tag + " components", graphs::weak_components(g));
    }
    graphs::Graph grid = graphs::grid_graph(200, 99);
    report.distances("grid dijkstra", graphs::dijkstra(grid, 0));
    report.levels("grid bfs", graphs::bfs_levels(grid, 200 * 100 + 100));
    report.print();
    return 0;
}
