// Every dit_* golden case: the CPU float32 forward against the official WanModel.forward outputs, batched and
// per sample, plus every stored intermediate (patch/time/text embeddings, each block, head).
#include "golden.h"

#include "dit/dit.h"
#include "tiny_dit.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <map>

namespace {

using wan::dit::WanModel;

using wan::test::tiny_model;

void report(const at::Tensor& a, const at::Tensor& e, const std::string& label) {
    const double err = (a.to(at::kDouble) - e.to(at::kDouble)).abs().max().item<double>();
    std::printf("  %-40s max |err| %.3g (max |ref| %.3g)\n", label.c_str(), err, e.abs().max().item<double>());
}

TEST(GoldenDit, EveryCase) {
    const auto tol = wan::test::tolerance("dit");
    for (const std::string& name : wan::test::list_cases("dit_")) {
        SCOPED_TRACE(name);
        const auto c = wan::test::load_case(name);
        const int64_t batch = c.meta.at("batch").get<int64_t>();
        std::vector<at::Tensor> xs, ctxs, outs;
        for (int64_t b = 0; b < batch; ++b) {
            xs.push_back(c.get("x." + std::to_string(b)));
            ctxs.push_back(c.get("context." + std::to_string(b)));
            outs.push_back(c.get("out." + std::to_string(b)));
        }
        const at::Tensor t = c.get("t");
        const int64_t seq_len = c.get("seq_len").item<int64_t>();
        std::printf("%s: batch %lld, seq_len %lld\n", name.c_str(), static_cast<long long>(batch),
                    static_cast<long long>(seq_len));

        // Batched, as upstream runs it, with intermediates captured.
        std::map<std::string, at::Tensor> seen;
        WanModel& model = const_cast<WanModel&>(tiny_model());
        model.set_intermediate_hook([&](const std::string& n, const at::Tensor& v) { seen[n] = v.clone(); });
        const auto got = model.forward(xs, t, ctxs, seq_len);
        model.set_intermediate_hook({});
        ASSERT_EQ(got.size(), static_cast<size_t>(batch));
        for (int64_t b = 0; b < batch; ++b) {
            const std::string label = name + " out." + std::to_string(b);
            EXPECT_TRUE(wan::test::all_close(got[b], outs[b], tol, label));
            report(got[b], outs[b], label);
        }
        int checked = 0;
        for (const auto& tn : c.tensors.names()) {
            const std::string prefix = "intermediate.";
            if (tn.rfind(prefix, 0) != 0) continue;
            std::string ours = tn.substr(prefix.size());
            if (ours == "patch_embedding") ours += ".0";  // the golden hook saw x.0
            auto it = seen.find(ours);
            ASSERT_TRUE(it != seen.end()) << "no intermediate '" << ours << "' from the forward";
            const at::Tensor ref = c.get(tn);
            EXPECT_TRUE(wan::test::all_close(it->second, ref, tol, name + " " + tn));
            report(it->second, ref, tn);
            ++checked;
        }
        if (c.meta.contains("intermediates")) EXPECT_GE(checked, 5) << "intermediates listed but not compared";

        // Per sample through the single-sample overload: the same numbers (keys are limited to each sample).
        if (batch > 1) {
            for (int64_t b = 0; b < batch; ++b) {
                at::Tensor tb = t.numel() == 1 ? t.reshape({1}) : t.narrow(0, b, 1);
                at::Tensor one = model.forward(xs[b], tb, ctxs[b], seq_len);
                const std::string label = name + " single out." + std::to_string(b);
                EXPECT_TRUE(wan::test::all_close(one, outs[b], tol, label));
                report(one, outs[b], label);
            }
        }
    }
}

}  // namespace
