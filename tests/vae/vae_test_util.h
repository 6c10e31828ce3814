// Shared by the VAE tests: runs a call with an intermediate hook and checks every `intermediate.*` tensor of a
// golden case against the outputs captured for that module and call index; the loop over a kind of golden case.
#pragma once

#include "golden.h"
#include "vae/vae.h"

#include <ATen/ATen.h>

#include <iostream>
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

/// `actual` is within `tol` of the case's tensor `key`; prints the max abs error either way.
inline void expect_matches(const GoldenCase& c, const std::string& key, const at::Tensor& actual, Tolerance tol) {
    EXPECT_TRUE(all_close(actual, c.get(key), tol, c.name + " " + key));
    print_max_abs(c.name + " " + key, actual, c.get(key));
}

/// For every golden case of `kind` ("vae_decode": the cases vae_decode_*, checked within tolerance("vae_decode")),
/// under its own trace: run(case, capture, tolerance), where run passes capture.callbacks() to the call under
/// test; then every intermediate the case holds is checked against what the capture saw.
template <class Run>
void for_each_golden_case(const std::string& kind, Run&& run) {
    const Tolerance tol = tolerance(kind);
    for (const std::string& name : list_cases(kind + "_")) {
        SCOPED_TRACE(name);
        const GoldenCase c = load_case(name);
        IntermediateCapture capture;
        capture.golden = &c;
        run(c, capture, tol);
        capture.check_all(tol);
    }
}

/// The tiny checkpoint's VAE (Wan2.1_VAE.pth), as the pipeline loads it.
inline vae::WanVAE load_tiny_vae() {
    return vae::WanVAE(io::TensorStore::open_pth(tiny_ckpt_dir() + "/Wan2.1_VAE.pth"));
}

}  // namespace wan::test
