// wanstudio: every rank runs this binary (as upstream under torchrun). World rank 0 is the head (GUI or
// headless); ranks 1..N-1 loop on requests until shutdown and never touch Qt.
#include "cli/inspect.h"
#include "cli/options.h"
#include "core/core.h"

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
    wan::app::AppOptions options;
    try {
        options = wan::app::parse_options(argc, argv);
    } catch (const wan::Error& e) {
        std::fprintf(stderr, "wanstudio: %s\n", e.what());
        return 2;
    }
    try {
        switch (options.mode) {
            case wan::app::RunMode::Help:
                std::cout << wan::app::help_text();
                return 0;
            case wan::app::RunMode::Version:
                std::cout << "wanstudio " << wan::version_string() << "\n";
                return 0;
            case wan::app::RunMode::Inspect:
                wan::app::inspect_checkpoint(options.inspect_dir, std::cout);
                return 0;
            default:
                std::fprintf(stderr, "wanstudio: this mode is not available yet in this build\n");
                return 2;
        }
    } catch (const wan::Error& e) {
        std::fprintf(stderr, "wanstudio: %s\n", e.what());
        return 1;
    }
}
