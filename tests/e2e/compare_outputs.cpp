// wan-compare A B [atol] [rtol] [NAMES]: compares two --save-latents files tensor by tensor (latent, video,
// context, context_null; or the comma-separated NAMES, e.g. "latent" against a reference file that holds only
// that) and prints the worst element; exit 0 when every tensor is finite and within tolerance.
#include "core/core.h"
#include "io/io.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: wan-compare A.safetensors B.safetensors [atol=1e-4] [rtol=1e-3] [NAMES]\n");
        return 2;
    }
    const double atol = argc > 3 ? std::atof(argv[3]) : 1e-4, rtol = argc > 4 ? std::atof(argv[4]) : 1e-3;
    try {
        auto a = wan::io::TensorStore::open(argv[1]);
        auto b = wan::io::TensorStore::open(argv[2]);
        bool ok = true;
        std::vector<std::string> names = {"latent", "video", "context", "context_null"};
        if (argc > 5) {
            names.clear();
            std::string list = argv[5];
            for (size_t pos = 0; pos <= list.size();) {
                const size_t comma = std::min(list.find(',', pos), list.size());
                if (comma > pos) names.push_back(list.substr(pos, comma - pos));
                pos = comma + 1;
            }
        }
        for (const std::string& name_s : names) {
            const char* name = name_s.c_str();
            if (argc <= 5 && name_s == "context_null" && !a.contains(name) && !b.contains(name)) {
                std::printf("%-13s in neither (an unguided job encodes no negative prompt)\n", name);
                continue;
            }
            if (!a.contains(name) || !b.contains(name)) {
                std::printf("%-13s missing in %s\n", name, a.contains(name) ? argv[2] : argv[1]);
                ok = false;
                continue;
            }
            at::Tensor x = a.get(name).to(at::kDouble), y = b.get(name).to(at::kDouble);
            if (x.sizes() != y.sizes()) {
                std::printf("%-13s shapes differ\n", name);
                ok = false;
                continue;
            }
            // A non-finite value anywhere is a failure by itself: `err > tol` is false for NaN, so a broken
            // run that writes NaN everywhere would otherwise "match" any reference.
            const int64_t nonfinite_x = x.numel() - x.isfinite().sum().item<int64_t>();
            const int64_t nonfinite_y = y.numel() - y.isfinite().sum().item<int64_t>();
            if (nonfinite_x > 0 || nonfinite_y > 0) {
                std::printf("%-13s %lld non-finite values in %s, %lld in %s\n", name,
                            static_cast<long long>(nonfinite_x), argv[1], static_cast<long long>(nonfinite_y), argv[2]);
                ok = false;
                continue;
            }
            at::Tensor err = (x - y).abs();
            at::Tensor bad = err > (atol + rtol * y.abs());
            const double max_err = x.numel() ? err.max().item<double>() : 0.0;
            const int64_t nbad = bad.sum().item<int64_t>();
            std::printf("%-13s max |diff| %.3g, %lld of %lld out of tolerance (atol %g, rtol %g)\n", name, max_err,
                        static_cast<long long>(nbad), static_cast<long long>(x.numel()), atol, rtol);
            ok = ok && nbad == 0;
        }
        std::printf(ok ? "outputs match\n" : "outputs DIFFER\n");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wan-compare: %s\n", e.what());
        return 2;
    }
}
