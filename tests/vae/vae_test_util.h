// Shared by the VAE tests: runs a call with an intermediate hook and checks every `intermediate.*` tensor of a
// golden case against the outputs captured for that module and call index.
#pragma once

#include "golden.h"
#include "vae/vae.h"

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace wan::test {

/// Prints the max abs error (all_close reports the worst element only on failure).
inline void print_max_abs(const std::string& label, const at::Tensor& actual, const at::Tensor& expected) {
    const double err = (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
    std::cout << "  " << label << ": max abs err " << err << "\n";
}

/// Captures "intermediate.<module>.call<k>" → output (batch dim dropped) for the keys the case has.
struct IntermediateCapture {
    const GoldenCase* golden = nullptr;
    std::map<std::string, int> calls;
    std::map<std::string, at::Tensor> captured;

    vae::DecodeCallbacks callbacks() {
        vae::DecodeCallbacks cb;
        cb.on_intermediate = [this](const std::string& module, const at::Tensor& out) {
            const std::string key = "intermediate." + module + ".call" + std::to_string(calls[module]++);
            if (golden->has(key)) captured[key] = out[0].to(at::kFloat).clone();
        };
        return cb;
    }

    /// Every intermediate of the case must have been produced and be within `tol`.
    void check_all(Tolerance tol) const {
        int checked = 0;
        for (const auto& name : golden->tensors.names()) {
            if (name.rfind("intermediate.", 0) != 0) continue;
            auto it = captured.find(name);
            ASSERT_NE(it, captured.end()) << golden->name << ": no output captured for " << name;
            EXPECT_TRUE(all_close(it->second, golden->get(name), tol, golden->name + " " + name));
            print_max_abs(name, it->second, golden->get(name));
            ++checked;
        }
        std::cout << golden->name << ": " << checked << " intermediates checked\n";
    }
};

}  // namespace wan::test
