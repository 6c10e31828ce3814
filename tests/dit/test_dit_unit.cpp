// DiT unit tests: parameter counts from the expected shapes, checkpoint validation messages, bad inputs,
// padded seq_len, the cross-attention cache, RoPE tables and the sequence-parallel pieces (including a
// world of 2 and 3 simulated with threads).
#include "golden.h"

#include "core/core.h"
#include "dit/dit.h"
#include "fake_sequence_parallel.h"
#include "scoped_env.h"
#include "tiny_dit.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <set>

namespace {

using wan::dit::WanModel;
using wan::io::WanConfig;

using wan::test::tiny_config;
using wan::test::tiny_model;
using wan::test::tiny_store;

// Expects `fn` to throw wan::Error whose message contains every string of `parts`.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
    try {
        fn();
        ADD_FAILURE() << "expected a wan::Error";
    } catch (const wan::Error& e) {
        const std::string msg = e.what();
        for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
}

// A small deterministic case from the golden inputs' sizes (so nothing here assumes tiny sizes).
struct Inputs {
    at::Tensor x, t, ctx;
    int64_t n = 0;
};
Inputs make_inputs(const WanConfig& c, int64_t F, int64_t H, int64_t W, int64_t L, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    Inputs in;
    in.x = at::randn({c.in_dim, F, H, W}, gen);
    in.t = at::full({1}, 421.0);
    in.ctx = at::randn({L, c.text_dim}, gen);
    in.n = F * (H / c.patch_size[1]) * (W / c.patch_size[2]);
    return in;
}

// ---- parameters ---------------------------------------------------------------------------------------

TEST(DitParams, CountsOfTheRealModels) {
    WanConfig c13;  // defaults are the 1.3B config.json
    EXPECT_EQ(c13.variant(), "1.3B");
    EXPECT_EQ(wan::dit::expected_parameter_count(c13), 1418996800LL);
    EXPECT_EQ(wan::dit::expected_parameter_shapes(c13).size(), 825u);
    WanConfig c14;
    c14.dim = 5120;
    c14.ffn_dim = 13824;
    c14.num_heads = 40;
    c14.num_layers = 40;
    EXPECT_EQ(c14.variant(), "14B");
    EXPECT_EQ(wan::dit::expected_parameter_count(c14), 14288491584LL);
    EXPECT_EQ(wan::dit::expected_parameter_shapes(c14).size(), 1095u);
}

TEST(DitParams, TinyCheckpointMatchesExpectedShapesExactly) {
    const WanConfig c = tiny_config();
    auto store = tiny_store();
    const auto specs = wan::dit::expected_parameter_shapes(c);
    std::set<std::string> expected, found(store.names().begin(), store.names().end());
    int64_t numel = 0;
    for (const auto& s : specs) {
        expected.insert(s.name);
        ASSERT_TRUE(store.contains(s.name)) << s.name;
        EXPECT_EQ(store.info(s.name).shape, s.shape) << s.name;
        numel += store.info(s.name).numel();
    }
    EXPECT_EQ(expected, found);
    EXPECT_EQ(numel, wan::dit::expected_parameter_count(c));
    // named_parameters gives back the checkpoint keys in state-dict order.
    const auto named = tiny_model().named_parameters();
    ASSERT_EQ(named.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        EXPECT_EQ(named[i].first, specs[i].name);
        EXPECT_EQ(named[i].second.sizes().vec(), specs[i].shape);
        EXPECT_TRUE(named[i].second.equal(store.get(specs[i].name))) << specs[i].name;
    }
}

wan::io::NamedTensors all_tensors(const wan::io::TensorStore& s) {
    wan::io::NamedTensors out;
    for (const auto& n : s.names()) out.emplace_back(n, s.get(n));
    return out;
}

TEST(DitParams, MissingKeyIsNamed) {
    auto store = tiny_store();
    auto tensors = all_tensors(store);
    const std::string victim = "blocks.1.cross_attn.norm_k.weight";
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == victim; }),
                  tensors.end());
    const std::string path = wan::test::make_temp_dir("dit_missing") + "/dit.safetensors";
    wan::io::save_safetensors(path, tensors);
    auto bad = wan::io::TensorStore::open(path);
    const WanConfig c = tiny_config();
    const std::string shape = "[" + std::to_string(c.dim) + "]";
    expect_error([&] { WanModel m(c, bad); }, {"missing tensor", victim, shape, path});
}

TEST(DitParams, WrongShapeIsNamed) {
    auto store = tiny_store();
    auto tensors = all_tensors(store);
    const std::string victim = "blocks.0.ffn.0.weight";
    const WanConfig c = tiny_config();
    for (auto& p : tensors)
        if (p.first == victim) p.second = at::zeros({c.ffn_dim + 1, c.dim});
    const std::string path = wan::test::make_temp_dir("dit_shape") + "/dit.safetensors";
    wan::io::save_safetensors(path, tensors);
    auto bad = wan::io::TensorStore::open(path);
    const std::string found = "[" + std::to_string(c.ffn_dim + 1) + ", " + std::to_string(c.dim) + "]";
    const std::string expected = "[" + std::to_string(c.ffn_dim) + ", " + std::to_string(c.dim) + "]";
    expect_error([&] { WanModel m(c, bad); }, {victim, "has shape " + found, "expected " + expected});
    // A config that disagrees with the file (e.g. another ffn_dim) is reported the same way.
    WanConfig other = c;
    other.ffn_dim = c.ffn_dim * 2;
    expect_error([&] { WanModel m(other, store); }, {"ffn.0.weight", "expected [" + std::to_string(other.ffn_dim)});
}

TEST(DitParams, RandomModelHasTheExpectedLayout) {
    const WanConfig c = tiny_config();
    WanModel m = WanModel::random(c, {}, 7, 1);
    EXPECT_EQ(m.config().num_layers, 1);
    const auto named = m.named_parameters();
    WanConfig c1 = c;
    c1.num_layers = 1;
    const auto specs = wan::dit::expected_parameter_shapes(c1);
    ASSERT_EQ(named.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) EXPECT_EQ(named[i].second.sizes().vec(), specs[i].shape);
    Inputs in = make_inputs(c, 2, 4, 6, 5, 3);
    at::Tensor out = m.forward(in.x, in.t, in.ctx, in.n);
    EXPECT_EQ(out.sizes(), in.x.sizes());
    EXPECT_TRUE(out.isfinite().all().item<bool>());
}

// ---- inputs -------------------------------------------------------------------------------------------

TEST(DitInputs, BadInputsGiveClearErrors) {
    const WanModel& m = tiny_model();
    const WanConfig& c = m.config();
    Inputs in = make_inputs(c, 2, 4, 6, 5, 1);
    const std::string in_dim = std::to_string(c.in_dim);
    expect_error([&] { m.forward(at::randn({c.in_dim + 1, 2, 4, 6}), in.t, in.ctx, in.n); },
                 {"channels", "in_dim = " + in_dim});
    expect_error([&] { m.forward(in.x, in.t, at::randn({5, c.text_dim + 3}), in.n); },
                 {"wider than text_dim", std::to_string(c.text_dim + 3)});
    expect_error([&] { m.forward(in.x, in.t, at::randn({c.text_len + 1, c.text_dim}), in.n); },
                 {"rows", "text_len = " + std::to_string(c.text_len)});
    expect_error([&] { m.forward(at::randn({c.in_dim, 2, 1, 6}), in.t, in.ctx, 64); }, {"smaller than the", "patch"});
    expect_error([&] { m.forward(in.x, in.t, in.ctx, in.n - 1); },
                 {"seq_len " + std::to_string(in.n - 1), std::to_string(in.n) + " tokens"});
    expect_error([&] { m.forward(in.x, at::ones({2}), in.ctx, in.n); }, {"timestep"});
    expect_error([&] { m.forward(std::vector<at::Tensor>{in.x, in.x}, at::ones({3}), {in.ctx, in.ctx}, in.n); },
                 {"t has 3 elements"});
}

TEST(DitInputs, PaddedSeqLenLeavesRealTokensUnchanged) {
    const WanModel& m = tiny_model();
    Inputs in = make_inputs(m.config(), 2, 5, 6, 4, 2);  // odd H: the last row is dropped
    at::Tensor exact = m.forward(in.x, in.t, in.ctx, in.n);
    at::Tensor padded = m.forward(in.x, in.t, in.ctx, in.n + 7);
    EXPECT_EQ(exact.sizes(), (at::IntArrayRef{m.config().out_dim, 2, 4, 6}));
    EXPECT_TRUE(wan::test::all_close(padded, exact, {1e-5, 1e-5}, "padded vs exact seq_len"));
}

TEST(DitInputs, CrossAttentionCacheIsTransparent) {
    const WanModel& m = tiny_model();
    Inputs in = make_inputs(m.config(), 1, 4, 4, 6, 4);
    Inputs other = make_inputs(m.config(), 1, 4, 4, 3, 5);
    at::Tensor ref = m.forward(in.x, in.t, in.ctx, in.n);
    at::Tensor ref_other = m.forward(in.x, in.t, other.ctx, in.n);
    wan::dit::CrossAttentionCache cache;
    EXPECT_TRUE(m.forward(in.x, in.t, in.ctx, in.n, &cache).equal(ref));
    EXPECT_TRUE(m.forward(in.x, at::full({1}, 3.0), in.ctx, in.n, &cache).equal(
        m.forward(in.x, at::full({1}, 3.0), in.ctx, in.n)));
    // Another context object: the cache notices and recomputes.
    EXPECT_TRUE(m.forward(in.x, in.t, other.ctx, in.n, &cache).equal(ref_other));
    EXPECT_TRUE(m.forward(in.x, in.t, in.ctx, in.n, &cache).equal(ref));
}

// ---- RoPE and sequence pieces -----------------------------------------------------------------------

TEST(DitRope, MatchesComplexProductAndIdentityOnPadding) {
    const int64_t d = tiny_config().head_dim();
    const std::vector<wan::dit::Grid> grids{{2, 3, 4}};
    const int64_t n = 24, rows = 30;
    auto tab = wan::dit::rope_tables(grids, d, rows, 0, at::kDouble, at::kCPU);
    at::Tensor x = at::randn({1, rows, 2, d}, at::TensorOptions().dtype(at::kDouble));
    at::Tensor got = wan::dit::apply_rope(x, tab);
    // Reference: complex128 product with angles pos·10000^(−2j/dim) per axis (wan21-reference.md §4.6).
    const int64_t c = d / 2, cf = c - 2 * (c / 3), ch = c / 3;
    auto inv = [](int64_t dim) {
        return at::pow(10000.0, at::arange(0, dim, 2, at::TensorOptions().dtype(at::kDouble)).div(double(dim)))
            .reciprocal();
    };
    at::Tensor invf = inv(2 * cf), invh = inv(2 * ch);
    at::Tensor ref = x.clone();
    for (int64_t r = 0; r < n; ++r) {
        const int64_t f = r / 12, h = (r / 4) % 3, w = r % 4;
        at::Tensor ang = at::cat({invf * double(f), invh * double(h), invh * double(w)});  // [c]
        at::Tensor rot = at::polar(at::ones_like(ang), ang);
        at::Tensor xc = at::view_as_complex(x[0][r].reshape({2, c, 2}).contiguous());
        ref[0][r] = at::view_as_real(xc * rot).reshape({2, d});
    }
    EXPECT_TRUE(wan::test::all_close(got, ref, {1e-12, 1e-12}, "rope vs complex product"));
    EXPECT_TRUE(got.narrow(1, n, rows - n).equal(x.narrow(1, n, rows - n)));  // padding rows untouched
}

TEST(DitSequence, ChunkRopeRowsAreGlobalRowsOfTheFullTable) {
    const int64_t d = tiny_config().head_dim();
    const std::vector<wan::dit::Grid> grids{{2, 2, 3}, {1, 2, 2}};
    const int64_t seq_len = 15;
    for (int world : {1, 2, 3, 4}) {
        const auto c0 = wan::dit::sequence_chunk(seq_len, world, 0);
        auto full = wan::dit::rope_tables(grids, d, c0.padded_len, 0, at::kFloat, at::kCPU);
        for (int r = 0; r < world; ++r) {
            const auto ch = wan::dit::sequence_chunk(seq_len, world, r);
            EXPECT_EQ(ch.padded_len % world, 0);
            EXPECT_EQ(ch.begin, r * ch.chunk_len);
            auto part = wan::dit::rope_tables(grids, d, ch.chunk_len, ch.begin, at::kFloat, at::kCPU);
            EXPECT_TRUE(part.cos.equal(full.cos.narrow(1, ch.begin, ch.chunk_len))) << world << " " << r;
            EXPECT_TRUE(part.sin.equal(full.sin.narrow(1, ch.begin, ch.chunk_len))) << world << " " << r;
        }
    }
}

TEST(DitSequence, SplitAndGatherRoundTrip) {
    at::Tensor x = at::randn({2, 13, 5});
    for (int world : {1, 2, 3, 4, 5}) {
        std::vector<at::Tensor> parts;
        for (int r = 0; r < world; ++r) {
            const auto ch = wan::dit::sequence_chunk(13, world, r);
            parts.push_back(wan::dit::split_sequence(x, ch));
            EXPECT_EQ(parts.back().size(1), ch.chunk_len);
        }
        at::Tensor g = at::cat(parts, 1);  // what gather_sequence returns
        EXPECT_EQ(g.size(1), wan::dit::sequence_chunk(13, world, 0).padded_len);
        EXPECT_TRUE(g.narrow(1, 0, 13).equal(x)) << world;
        EXPECT_EQ(g.narrow(1, 13, g.size(1) - 13).abs().sum().item<double>(), 0.0) << world;
    }
}

TEST(DitSequence, AttentionKeyLimitEqualsSlicing) {
    at::Tensor q = at::randn({2, 7, 3, 8}), k = at::randn({2, 9, 3, 8}), v = at::randn({2, 9, 3, 8});
    at::Tensor a = wan::dit::attention(q, k, v, 5);
    at::Tensor b = wan::dit::attention(q, k.narrow(1, 0, 5).contiguous(), v.narrow(1, 0, 5).contiguous());
    EXPECT_TRUE(wan::test::all_close(a, b, {1e-6, 1e-6}, "k_len vs slice"));
    // Against the plain formula.
    at::Tensor s = at::matmul(q.transpose(1, 2), k.narrow(1, 0, 5).permute({0, 2, 3, 1})) / std::sqrt(8.0);
    at::Tensor ref = at::matmul(at::softmax(s, -1), v.narrow(1, 0, 5).transpose(1, 2)).transpose(1, 2);
    EXPECT_TRUE(wan::test::all_close(a, ref, {1e-5, 1e-5}, "attention vs formula"));
}

using wan::test::FakeWorld;

TEST(DitSequence, SimulatedWorldsMatchOneRank) {
    const WanConfig c = tiny_config();
    auto store = tiny_store();
    const WanModel& single = tiny_model();
    const auto tol = wan::test::tolerance("dit");
    for (int world : {2, 3}) {
        FakeWorld ranks(c, store, world);
        // Two samples of different sizes, seq_len not a multiple of the world (padding on the last rank).
        Inputs a = make_inputs(c, 2, 5, 6, 4, 11), b = make_inputs(c, 1, 4, 4, 9, 12);
        const int64_t seq_len = a.n + 1;
        const std::vector<at::Tensor> xs{a.x, b.x}, ctx{a.ctx, b.ctx};
        const at::Tensor t = at::tensor({250.0f, 750.0f});
        const auto ref = single.forward(xs, t, ctx, seq_len);
        std::vector<std::vector<at::Tensor>> outs(world);
        ranks.run([&](int r) { outs[r] = ranks.model(r).forward(xs, t, ctx, seq_len); });
        for (int r = 0; r < world; ++r) {
            ASSERT_EQ(outs[r].size(), 2u);
            for (size_t s = 0; s < 2; ++s)
                EXPECT_TRUE(wan::test::all_close(outs[r][s], ref[s], tol,
                                                 "world " + std::to_string(world) + " rank " + std::to_string(r) +
                                                     " sample " + std::to_string(s)));
        }
    }
}

}  // namespace

namespace {

// The GPU precision path, run on the CPU: weights split bf16 / f32 islands, output close to f32, bf16 values.
TEST(DitPrecision, MixedBf16PathRunsAndStaysClose) {
    const WanConfig c = tiny_config();
    auto store = tiny_store();
    wan::dit::ModelOptions opt;
    opt.precision = wan::dit::Precision::BF16Mixed;
    WanModel mixed(c, store, opt);
    EXPECT_EQ(mixed.precision(), wan::dit::Precision::BF16Mixed);
    const auto specs = wan::dit::expected_parameter_shapes(c);
    const auto named = mixed.named_parameters();
    for (size_t i = 0; i < specs.size(); ++i)
        EXPECT_EQ(named[i].second.scalar_type(), specs[i].keep_f32 ? at::kFloat : at::kBFloat16) << specs[i].name;
    Inputs in = make_inputs(c, 2, 5, 6, 4, 21);
    at::Tensor ref = tiny_model().forward(in.x, in.t, in.ctx, in.n + 3);
    at::Tensor got = mixed.forward(in.x, in.t, in.ctx, in.n + 3);
    EXPECT_EQ(got.scalar_type(), at::kFloat);
    EXPECT_TRUE(got.equal(got.to(at::kBFloat16).to(at::kFloat)));  // rounded like upstream's einsum
    const double rel = ((got - ref).abs().max() / ref.abs().max()).item<double>();
    EXPECT_LT(rel, 0.05) << "bf16 mixed precision far from f32";
    std::printf("  mixed bf16 vs f32: max |err| / max |ref| = %.3g\n", rel);
}

}  // namespace

using wan::test::ScopedEnv;

TEST(DitOptions, FromEnvironmentReadsTheMeasurementSwitches) {
    using wan::dit::AttentionBackend;
    using wan::dit::ModelOptions;
    // The four switches as set (nullptr: unset) and the options they must give. The last row is as before the
    // switches moved: only "1" turns WAN_FP8 / WAN_DIT_STAGES on, only "0" turns WAN_FUSED off; an unknown
    // backend means auto.
    struct Row {
        const char *fp8, *fused, *attention, *stages;
        bool want_fp8, want_fused;
        AttentionBackend want_attention;
        bool want_stage_clock;
    };
    for (const Row& r : std::vector<Row>{
             {nullptr, nullptr, nullptr, nullptr, false, true, AttentionBackend::Auto, false},
             {"1", "0", "cudnn", "1", true, false, AttentionBackend::CuDNN, true},
             {"yes", "no", "fast", "", false, true, AttentionBackend::Auto, false}}) {
        ScopedEnv a("WAN_FP8", r.fp8), b("WAN_FUSED", r.fused), c("WAN_ATTENTION", r.attention),
            d("WAN_DIT_STAGES", r.stages);
        const ModelOptions o = ModelOptions::from_environment();
        const std::string row = std::string("WAN_FP8=") + (r.fp8 ? r.fp8 : "(unset)");
        EXPECT_EQ(o.fp8, r.want_fp8) << row;
        EXPECT_EQ(o.fused_kernels, r.want_fused) << row;
        EXPECT_EQ(o.attention, r.want_attention) << row;
        EXPECT_EQ(o.stage_clock, r.want_stage_clock) << row;
    }
    {  // fp8-held weights feed the FP8 GEMMs unless WAN_FP8_DIRECT=0 (Note [FP8 weights]); the weight dtype is
       // --dit-dtype's, never the environment's.
        EXPECT_TRUE(ModelOptions::from_environment().fp8_direct);
        ScopedEnv e("WAN_FP8_DIRECT", "0");
        EXPECT_FALSE(ModelOptions::from_environment().fp8_direct);
        EXPECT_EQ(ModelOptions::from_environment().weight_dtype, wan::dit::WeightDtype::Auto);
    }
    for (const auto& [name, backend] : std::vector<std::pair<const char*, AttentionBackend>>{
             {"auto", AttentionBackend::Auto}, {"fa3", AttentionBackend::FlashAttention3},
             {"flash", AttentionBackend::Flash}, {"sdpa", AttentionBackend::Sdpa}}) {
        ScopedEnv c("WAN_ATTENTION", name);
        EXPECT_EQ(ModelOptions::from_environment().attention, backend) << name;
    }
    using wan::dit::AttentionFp8;
    EXPECT_EQ(ModelOptions::from_environment().attention_fp8, AttentionFp8::Off);
    for (const auto& [value, mode] : std::vector<std::pair<const char*, AttentionFp8>>{
             {"on", AttentionFp8::On}, {"1", AttentionFp8::On}, {"kmean", AttentionFp8::KMean},
             {"off", AttentionFp8::Off}, {"fast", AttentionFp8::Off}}) {
        ScopedEnv e("WAN_FP8_ATTENTION", value);
        EXPECT_EQ(ModelOptions::from_environment().attention_fp8, mode) << value;
    }
}

TEST(DitOptions, AttentionKernelNameReportsAForcedBackend) {
    const c10::Device cpu(c10::kCPU);
    EXPECT_EQ(wan::dit::attention_kernel_name(cpu), "cpu");
    EXPECT_EQ(wan::dit::attention_kernel_name(cpu, wan::dit::AttentionBackend::CuDNN), "cudnn");
    EXPECT_EQ(wan::dit::attention_kernel_name(cpu, wan::dit::AttentionBackend::Sdpa), "sdpa");
    EXPECT_FALSE(wan::dit::parse_attention_backend("FA3").has_value());
}

TEST(DitOptions, SequenceParallelRunsTheModelsAttentionBackend) {
    wan::dit::ModelOptions opt;
    opt.attention = wan::dit::AttentionBackend::Sdpa;
    auto store = tiny_store();
    WanModel m(tiny_config(), store, opt);
    wan::test::FakeComm comm(1);
    auto sp = std::make_shared<wan::test::FakeSequenceParallel>(comm, 1, 0);
    m.set_sequence_parallel(sp);
    EXPECT_EQ(sp->attention_backend(), wan::dit::AttentionBackend::Sdpa);
    EXPECT_EQ(sp->attention_fp8(), wan::dit::AttentionFp8::Off);
    m.set_attention_fp8(wan::dit::AttentionFp8::KMean);  // between forwards (wan-bench)
    EXPECT_EQ(sp->attention_fp8(), wan::dit::AttentionFp8::KMean);
    EXPECT_EQ(m.options().attention_fp8, wan::dit::AttentionFp8::KMean);
}

TEST(DitOptions, ANonResidentProviderGivesTheSameForward) {
    // Residency is asked of the provider (it decides whether derived weights may be cached); a provider that
    // does not claim it must compute the same values.
    class Gathered : public wan::dit::BlockWeightsProvider {
    public:
        explicit Gathered(wan::dit::BlockWeightsProvider& inner) : inner_(inner) {}
        int64_t num_blocks() const override { return inner_.num_blocks(); }
        wan::dit::BlockWeights acquire(int64_t i) override { return inner_.acquire(i); }
    private:
        wan::dit::BlockWeightsProvider& inner_;
    };
    auto store = tiny_store();
    WanModel m(tiny_config(), store);
    EXPECT_TRUE(m.block_weights().resident());
    const WanConfig c = tiny_config();
    at::manual_seed(5);
    const at::Tensor x = at::randn({c.in_dim, 2, 6, 8}), ctx = at::randn({4, c.text_dim});
    const at::Tensor t = at::scalar_tensor(600.0);
    const at::Tensor a = m.forward(x, t, ctx, 2 * 3 * 4);
    auto gathered = std::make_shared<Gathered>(m.block_weights());
    EXPECT_FALSE(gathered->resident());
    WanModel g(c, m.root_weights(), gathered, m.options());
    EXPECT_TRUE(at::equal(g.forward(x, t, ctx, 2 * 3 * 4), a));
}
