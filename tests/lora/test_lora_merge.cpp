// Merging LoRAs into the tiny DiT: every key style against the rule recomputed here in float64 with this
// file's own key tables (stacked, strengths, alpha / no alpha, diff / diff_b / diff_m), re-merge equals a
// fresh load, and the bad key / bad shape / incomplete pair errors.
#include "dit/dit.h"
#include "io/io.h"
#include "lora/lora.h"

#include "error_of.h"
#include "golden.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

using wan::test::error_of;
std::string accel(const std::string& name) { return wan::test::test_data_dir() + "/accel/" + name + ".safetensors"; }

wan::dit::WanModel tiny_model() {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    return wan::dit::WanModel(ckpt.config(), ckpt.open_dit(), {});
}

std::map<std::string, at::Tensor> snapshot(const wan::dit::WanModel& m) {
    std::map<std::string, at::Tensor> out;
    for (const auto& [name, t] : m.named_parameters()) out.emplace(name, t.clone());
    return out;
}

bool ends_with(const std::string& s, const std::string& x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}
std::string replaced(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
    return s;
}

// This test's own reading of the four accel files' module names (README §5), independent of engine/lora.
std::string native_module(const std::string& stem) { return stem.substr(std::string("diffusion_model.").size()); }
std::string kohya_module(const std::string& stem) {
    std::string s = stem.substr(std::string("lora_unet_").size());  // blocks_<i>_<module with _>
    s = replaced(s, "blocks_", "blocks.");
    for (const char* m : {"self_attn", "cross_attn", "ffn"}) s = replaced(s, std::string("_") + m + "_", std::string(".") + m + ".");
    return s;
}
std::string diffusers_module(const std::string& stem) {
    std::string s = "." + stem.substr(std::string("transformer.").size()) + ".";
    const std::pair<const char*, const char*> table[] = {{".attn1.", ".self_attn."}, {".attn2.", ".cross_attn."},
                                                         {".to_q.", ".q."},           {".to_k.", ".k."},
                                                         {".to_v.", ".v."},           {".to_out.0.", ".o."},
                                                         {".ffn.net.0.proj.", ".ffn.0."}, {".ffn.net.2.", ".ffn.2."}};
    for (const auto& r : table) s = replaced(s, r.first, r.second);
    return s.substr(1, s.size() - 2);
}

// strength * delta per parameter, float64, by the rule of README §5.
std::map<std::string, at::Tensor> expected_deltas(const std::string& path, double strength,
                                                  const std::function<std::string(const std::string&)>& module_of) {
    const wan::io::TensorStore st = wan::io::TensorStore::open_safetensors(path);
    struct Parts { at::Tensor down, up, alpha; };
    std::map<std::string, Parts> lora;
    std::map<std::string, at::Tensor> out;
    auto add = [&](const std::string& target, const at::Tensor& d) {
        auto it = out.find(target);
        if (it == out.end()) out.emplace(target, d);
        else it->second = it->second + d;
    };
    for (const auto& key : st.names()) {
        const at::Tensor t = st.load(key, c10::Device(c10::kCPU), at::kDouble);
        auto stem_of = [&](const std::string& suffix) { return key.substr(0, key.size() - suffix.size()); };
        if (key.find("k_img") != std::string::npos) continue;
        if (ends_with(key, ".lora_A.weight") || ends_with(key, ".lora_down.weight"))
            lora[module_of(stem_of(ends_with(key, ".lora_A.weight") ? ".lora_A.weight" : ".lora_down.weight"))].down = t;
        else if (ends_with(key, ".lora_B.weight") || ends_with(key, ".lora_up.weight"))
            lora[module_of(stem_of(ends_with(key, ".lora_B.weight") ? ".lora_B.weight" : ".lora_up.weight"))].up = t;
        else if (ends_with(key, ".alpha")) lora[module_of(stem_of(".alpha"))].alpha = t;
        else if (ends_with(key, ".diff_b")) add(module_of(stem_of(".diff_b")) + ".bias", t * strength);
        else if (ends_with(key, ".diff_m")) add(module_of(stem_of(".diff_m")) + ".modulation", t * strength);
        else if (ends_with(key, ".diff")) add(module_of(stem_of(".diff")) + ".weight", t * strength);
        else ADD_FAILURE() << "test does not know key " << key;
    }
    for (const auto& [module, p] : lora) {
        const double rank = static_cast<double>(p.down.size(0));
        const double scale = p.alpha.defined() ? p.alpha.item<double>() / rank : 1.0;
        add(module + ".weight", at::mm(p.up, p.down) * (strength * scale));
    }
    return out;
}

struct Stacked {
    std::string name;
    double strength;
    std::function<std::string(const std::string&)> module_of;
};

void expect_merged(const wan::dit::WanModel& model, const std::map<std::string, at::Tensor>& base,
                   const std::vector<Stacked>& loras, const std::string& label) {
    std::map<std::string, at::Tensor> want;
    for (const auto& l : loras)
        for (auto& [name, d] : expected_deltas(accel(l.name), l.strength, l.module_of)) {
            auto it = want.find(name);
            if (it == want.end()) want.emplace(name, d);
            else it->second = it->second + d;
        }
    int changed = 0;
    for (const auto& [name, t] : model.named_parameters()) {
        const at::Tensor b = base.at(name);
        const auto it = want.find(name);
        if (it == want.end()) {
            EXPECT_TRUE(at::equal(t, b)) << label << ": untouched parameter " << name << " changed";
            continue;
        }
        ++changed;
        const at::Tensor expect = b.to(at::kDouble) + it->second.reshape(b.sizes());
        EXPECT_TRUE(wan::test::all_close(t, expect, {2e-6, 2e-6}, label + " " + name));
        EXPECT_FALSE(at::equal(t, b)) << label << ": " << name << " did not change";
    }
    EXPECT_EQ(changed, static_cast<int>(want.size())) << label;
}

const std::vector<Stacked> kStyles = {
    {"lora_native", 1.0, native_module},
    {"lora_kohya", 1.0, kohya_module},
    {"lora_diffusers", 1.0, diffusers_module},
    {"lora_distill", 1.0, native_module},
};

TEST(LoraMerge, EachKeyStyleAlone) {
    wan::dit::WanModel model = tiny_model();
    const auto base = snapshot(model);
    wan::lora::LoraSet set;
    for (const auto& s : kStyles) {
        SCOPED_TRACE(s.name);
        const auto applied = set.apply(model, {{accel(s.name), s.strength}});
        ASSERT_EQ(applied.size(), 1u);
        EXPECT_EQ(applied[0].file_name, s.name + ".safetensors");
        EXPECT_EQ(applied[0].sha256.size(), 64u);
        expect_merged(model, base, {s}, s.name);
    }
    // What each file is, as the engine read it (README §5).
    EXPECT_EQ(set.applied()[0].style, "native");  // the distill file
    // Per block: 10 Linear weights (low rank) and their biases (diff_b), norm3 and self_attn.norm_q (diff),
    // the modulation (diff_m).
    EXPECT_EQ(set.applied()[0].parameters, 2 * (10 + 10 + 2 + 1));
}

TEST(LoraMerge, StackedWithStrengths) {
    wan::dit::WanModel model = tiny_model();
    const auto base = snapshot(model);
    const std::vector<Stacked> stack = {{"lora_native", 0.7, native_module},
                                        {"lora_kohya", -0.5, kohya_module},
                                        {"lora_diffusers", 1.3, diffusers_module},
                                        {"lora_distill", 1.0, native_module}};
    std::vector<wan::LoraSpec> specs;
    for (const auto& s : stack) specs.push_back({accel(s.name), s.strength});
    wan::lora::LoraSet set;
    const auto applied = set.apply(model, specs);
    ASSERT_EQ(applied.size(), 4u);
    EXPECT_EQ(applied[0].style, "native");
    EXPECT_EQ(applied[0].skipped_image_keys, 2);  // blocks.0.cross_attn.k_img lora_A and lora_B
    EXPECT_EQ(applied[0].sha256, "7f7990d76608504f6c6c4539ba1470b19296ca01e761b94f66f33d8e3bfaa0a5");
    EXPECT_EQ(applied[1].style, "kohya");
    EXPECT_EQ(applied[1].spec.strength, -0.5);
    EXPECT_EQ(applied[2].style, "diffusers");
    EXPECT_EQ(applied[3].skipped_image_keys, 0);
    expect_merged(model, base, stack, "stacked");
    // Host copies: exactly the touched parameters, f32 on the CPU.
    int64_t touched_bytes = 0;
    for (const auto& [name, t] : model.named_parameters())
        if (!at::equal(t, base.at(name))) touched_bytes += static_cast<int64_t>(t.nbytes());
    EXPECT_EQ(set.backup_bytes(), touched_bytes);
}

TEST(LoraMerge, ReMergeEqualsFreshLoad) {
    const std::vector<wan::LoraSpec> first = {{accel("lora_native"), 1.0}, {accel("lora_kohya"), 0.5}};
    const std::vector<wan::LoraSpec> second = {{accel("lora_diffusers"), -1.0}, {accel("lora_distill"), 0.8}};
    wan::dit::WanModel a = tiny_model();
    const auto base = snapshot(a);
    wan::lora::LoraSet set_a;
    set_a.apply(a, first);
    set_a.apply(a, second);
    wan::dit::WanModel b = tiny_model();
    wan::lora::LoraSet set_b;
    set_b.apply(b, second);
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i].second, pb[i].second)) << pa[i].first;
    // The same list again is a no-op; other strengths re-merge; an empty list gives the base model back exactly.
    set_a.apply(a, second);
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i].second, pb[i].second)) << pa[i].first;
    set_a.apply(a, {{accel("lora_diffusers"), 0.25}});
    expect_merged(a, base, {{"lora_diffusers", 0.25, diffusers_module}}, "re-merge 0.25");
    set_a.apply(a, {});
    for (const auto& [name, t] : a.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
    EXPECT_EQ(set_a.backup_bytes(), 0);
    EXPECT_TRUE(set_a.applied().empty());
}

// FSDP: each of 3 "ranks" holds elements [r·c, (r+1)·c) of every flattened parameter (c = ceil(n / 3): cuts in
// the middle of rows, and parameters some rank holds nothing of) and merges into that part only. Put together,
// the parts equal the whole merge bit for bit, each rank changed only its share of the elements (the
// shard-only path), a re-merge and a restore on the parts give the whole model's values, and the backups are
// the parts' bytes.
TEST(LoraMerge, ShardedPartsEqualTheWholeMergeAndEachRankMergesItsShareOnly) {
    const std::vector<wan::LoraSpec> stack = {{accel("lora_native"), 0.7}, {accel("lora_kohya"), -0.5},
                                              {accel("lora_diffusers"), 1.3}, {accel("lora_distill"), 1.0}};
    wan::dit::WanModel whole = tiny_model();
    const auto base = snapshot(whole);
    wan::lora::LoraSet whole_set;
    constexpr int kRanks = 3;
    struct Rank {
        std::map<std::string, at::Tensor> flat;  // this rank's copy of every parameter, flattened
        wan::lora::ParameterParts parts;
        wan::lora::LoraSet set;
    };
    std::vector<Rank> ranks(kRanks);
    for (int r = 0; r < kRanks; ++r) {
        for (const auto& [name, t] : base) {
            at::Tensor flat = ranks[r].flat.emplace(name, t.reshape({-1}).clone()).first->second;
            const int64_t n = flat.numel(), c = (n + kRanks - 1) / kRanks;
            const int64_t lo = std::min(n, r * c), hi = std::min(n, (r + 1) * c);
            ranks[r].parts.push_back({name, t.sizes().vec(), lo, flat.narrow(0, lo, hi - lo)});
        }
    }
    auto expect_tiled_equal_to_whole = [&](const std::string& label) {
        for (const auto& [name, t] : whole.named_parameters()) {
            std::vector<at::Tensor> pieces;
            for (const Rank& rk : ranks)
                for (const auto& p : rk.parts)
                    if (p.name == name) pieces.push_back(p.values);
            EXPECT_TRUE(at::equal(at::cat(pieces).view(t.sizes()), t)) << label << ": " << name;
        }
    };
    for (const auto& specs : {stack, std::vector<wan::LoraSpec>{{accel("lora_diffusers"), 0.25}},
                              std::vector<wan::LoraSpec>{}}) {
        const std::string label = std::to_string(specs.size()) + " LoRA(s)";
        whole_set.apply(whole, specs);
        int64_t merged = 0, backups = 0;
        for (Rank& rk : ranks) {
            rk.set.apply(rk.parts, specs);
            // Its share of each touched parameter: at most ceil(n / 3) elements of it.
            EXPECT_LE(rk.set.merged_elements(), whole_set.merged_elements() / kRanks + static_cast<int64_t>(base.size()))
                << label;
            merged += rk.set.merged_elements();
            backups += rk.set.backup_bytes();
        }
        EXPECT_EQ(merged, whole_set.merged_elements()) << label;
        EXPECT_EQ(backups, whole_set.backup_bytes()) << label;
        expect_tiled_equal_to_whole(label);
    }
    for (const auto& [name, t] : whole.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
}

// delta_part: any element range of a delta, computed alone, is that slice of the whole delta.
TEST(LoraMerge, DeltaPartIsTheSliceOfTheWholeDelta) {
    const wan::dit::WanModel model = tiny_model();
    std::vector<std::string> names;
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& [name, t] : model.named_parameters()) {
        names.push_back(name);
        shapes[name] = t.sizes().vec();
    }
    const wan::lora::KeyMapper mapper(names);
    const auto file = wan::lora::LoraFile::read(accel("lora_distill"), mapper);
    const c10::Device cpu(c10::kCPU);
    for (const auto& d : file.deltas()) {
        const auto& shape = shapes.at(d.target);
        const at::Tensor all = wan::lora::delta_tensor(d, shape, cpu, "f", 0.6).reshape({-1});
        const int64_t n = all.numel();
        for (const auto& [lo, count] : std::vector<std::pair<int64_t, int64_t>>{{0, n}, {n / 3, n / 2}, {n - 1, 1}, {1, 0}})
            EXPECT_TRUE(at::equal(wan::lora::delta_part(d, shape, lo, count, cpu, "f", 0.6), all.narrow(0, lo, count)))
                << d.target << " [" << lo << ", +" << count << ")";
    }
}

// --lora-backup: the three words parse, anything else names the option; weights on the CPU keep their copies
// on the host whatever is asked (there is no device to put them on).
TEST(LoraMerge, BackupPlaceOption) {
    using Set = wan::lora::LoraSet;
    EXPECT_EQ(Set::parse_backup_place("auto", "--lora-backup"), Set::BackupPlace::Auto);
    EXPECT_EQ(Set::parse_backup_place("device", "--lora-backup"), Set::BackupPlace::Device);
    EXPECT_EQ(Set::parse_backup_place("host", "--lora-backup"), Set::BackupPlace::Host);
    try {
        Set::parse_backup_place("gpu", "--lora-backup");
        ADD_FAILURE() << "'gpu' accepted";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("--lora-backup 'gpu': expected auto, device or host"), std::string::npos)
            << e.what();
    }
    wan::dit::WanModel m = tiny_model();
    Set set;
    set.set_backup_place(Set::BackupPlace::Device);
    set.apply(m, {{accel("lora_native"), 1.0}});
    EXPECT_GT(set.backup_bytes(), 0);
    EXPECT_EQ(set.device_backup_bytes(), 0);
}

TEST(LoraMerge, BadKeyNamesFileAndKeyAndLeavesBaseWeights) {
    wan::dit::WanModel model = tiny_model();
    const auto base = snapshot(model);
    wan::lora::LoraSet set;
    set.apply(model, {{accel("lora_native"), 1.0}});
    const std::string bad = accel("lora_badkey");
    const std::string msg = error_of([&] { set.apply(model, {{accel("lora_kohya"), 1.0}, {bad, 1.0}}); });
    EXPECT_NE(msg.find("LoRA file '" + bad + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("key 'lora_unet_blocks_0_self_attn_zz."), std::string::npos) << msg;
    EXPECT_NE(msg.find("matches no module"), std::string::npos) << msg;
    for (const auto& [name, t] : model.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
    EXPECT_TRUE(set.applied().empty());
    // A missing file names the file, and also leaves the base weights.
    set.apply(model, {{accel("lora_kohya"), 1.0}});
    const std::string missing = error_of([&] { set.apply(model, {{"/nonexistent/l.safetensors", 1.0}}); });
    EXPECT_NE(missing.find("LoRA file '/nonexistent/l.safetensors' cannot be read"), std::string::npos) << missing;
    for (const auto& [name, t] : model.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
    EXPECT_EQ(set.backup_bytes(), 0);
}

std::string write_lora(const std::string& name, const wan::io::NamedTensors& tensors) {
    const std::string path = wan::test::make_temp_dir("lora") + "/" + name + ".safetensors";
    wan::io::save_safetensors(path, tensors);
    return path;
}

TEST(LoraMerge, BadShapeNamesKeyAndBothShapes) {
    wan::dit::WanModel model = tiny_model();
    const auto base = snapshot(model);
    wan::lora::LoraSet set;
    const std::string low = write_lora("low", {{"diffusion_model.blocks.0.self_attn.q.lora_A.weight", at::randn({4, 64})},
                                               {"diffusion_model.blocks.0.self_attn.q.lora_B.weight", at::randn({128, 4})}});
    std::string msg = error_of([&] { set.apply(model, {{low, 1.0}}); });
    EXPECT_NE(msg.find("LoRA file '" + low + "': key 'diffusion_model.blocks.0.self_attn.q.lora_A.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[128, 64]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'blocks.0.self_attn.q.weight' has shape [128, 128]"), std::string::npos) << msg;
    const std::string full = write_lora("full", {{"diffusion_model.blocks.1.ffn.0.diff_b", at::randn({128})}});
    msg = error_of([&] { set.apply(model, {{full, 1.0}}); });
    EXPECT_NE(msg.find("key 'diffusion_model.blocks.1.ffn.0.diff_b' has shape [128] but the model's 'blocks.1.ffn.0.bias' has shape [256]"),
              std::string::npos) << msg;
    const std::string rank = write_lora("rank", {{"blocks.0.ffn.2.lora_down.weight", at::randn({4, 256})},
                                                 {"blocks.0.ffn.2.lora_up.weight", at::randn({128, 3})}});
    msg = error_of([&] { set.apply(model, {{rank, 1.0}}); });
    EXPECT_NE(msg.find("does not fit its lora_up of shape [128, 3]"), std::string::npos) << msg;
    for (const auto& [name, t] : model.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
}

TEST(LoraMerge, IncompletePairsAreErrors) {
    wan::dit::WanModel model = tiny_model();
    wan::lora::LoraSet set;
    const std::string down_only = write_lora("down", {{"diffusion_model.blocks.0.self_attn.k.lora_down.weight", at::randn({2, 128})}});
    std::string msg = error_of([&] { set.apply(model, {{down_only, 1.0}}); });
    EXPECT_NE(msg.find("key 'diffusion_model.blocks.0.self_attn.k.lora_down.weight' has no matching lora_up"), std::string::npos) << msg;
    const std::string alpha_only = write_lora("alpha", {{"diffusion_model.blocks.0.self_attn.k.alpha", at::scalar_tensor(4.0)}});
    msg = error_of([&] { set.apply(model, {{alpha_only, 1.0}}); });
    EXPECT_NE(msg.find("is an alpha without lora_down/lora_up"), std::string::npos) << msg;
}

TEST(LoraMerge, FileReplacedOnDiskIsReadAgain) {
    at::Tensor w = at::zeros({128});
    const wan::lora::NamedParameters params{{"blocks.0.ffn.2.bias", w}};
    const std::string path = write_lora("changing", {{"blocks.0.ffn.2.diff_b", at::full({128}, 1.0)}});
    wan::lora::LoraSet set;
    const std::string sha1 = set.apply(params, {{path, 2.0}}).at(0).sha256;
    EXPECT_TRUE(at::equal(w, at::full({128}, 2.0)));
    wan::io::save_safetensors(path, {{"blocks.0.ffn.2.diff_b", at::full({128}, 3.0)}});  // new file, same name
    const std::string sha2 = set.apply(params, {{path, 2.0}}).at(0).sha256;
    EXPECT_TRUE(at::equal(w, at::full({128}, 6.0)));
    EXPECT_NE(sha1, sha2);
}

// Each version of a file is hashed once per process (Note [Hashing LoRA files]): not again for a re-merge at
// another strength, nor for a second LoraSet (the other expert of a two-expert model); again once it changes.
TEST(LoraMerge, EachFileVersionIsHashedOncePerProcess) {
    at::Tensor w = at::zeros({128});
    const wan::lora::NamedParameters params{{"blocks.0.ffn.2.bias", w}};
    const std::string path = write_lora("hashed_once", {{"blocks.0.ffn.2.diff_b", at::full({128}, 1.0)}});
    wan::lora::LoraSet first, second;
    const int64_t before = wan::lora::sha256_files_hashed();
    const std::string sha = first.apply(params, {{path, 1.0}}).at(0).sha256;
    EXPECT_EQ(wan::lora::sha256_files_hashed(), before + 1);
    EXPECT_EQ(sha, wan::lora::sha256_file(path));
    EXPECT_EQ(first.apply(params, {{path, 0.5}}).at(0).sha256, sha);
    EXPECT_EQ(second.apply(params, {{path, 2.0}}).at(0).sha256, sha);
    EXPECT_EQ(wan::lora::sha256_files_hashed(), before + 2);  // the sha256_file above; no LoraSet hashed again
    wan::io::save_safetensors(path, {{"blocks.0.ffn.2.diff_b", at::full({128}, 3.0)}});
    EXPECT_NE(second.apply(params, {{path, 2.0}}).at(0).sha256, sha);
    EXPECT_EQ(wan::lora::sha256_files_hashed(), before + 3);
}

TEST(LoraMerge, Bf16WeightsGetOneRoundingOfTheF32Sum) {
    // The rule on a bf16 resident weight (the GPU's precision): bf16(f32(W) + delta).
    at::manual_seed(3);
    const at::Tensor w0 = at::randn({128, 128}).to(at::kBFloat16);
    at::Tensor w = w0.clone();
    const at::Tensor down = at::randn({2, 128}) * 0.1, up = at::randn({128, 2}) * 0.1;
    const std::string path = write_lora("bf16", {{"blocks.0.self_attn.q.lora_A.weight", down},
                                                 {"blocks.0.self_attn.q.lora_B.weight", up},
                                                 {"blocks.0.self_attn.q.alpha", at::scalar_tensor(4.0)}});
    wan::lora::LoraSet set;
    set.apply(wan::lora::NamedParameters{{"blocks.0.self_attn.q.weight", w}}, {{path, 0.5}});
    const at::Tensor want = (w0.to(at::kFloat) + at::mm(up, down) * (0.5 * 4.0 / 2.0)).to(at::kBFloat16);
    EXPECT_EQ(w.scalar_type(), at::kBFloat16);
    EXPECT_LE((w.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<float>(), 1.0f / 64);  // ≤ 1 ulp at |w| < 4
    EXPECT_GT(at::equal(w, want) ? 1 : (w == want).to(at::kFloat).mean().item<float>(), 0.99f);
    EXPECT_EQ(set.backup_bytes(), 128 * 128 * 2);  // the host copy keeps the bf16 dtype
    set.restore(wan::lora::NamedParameters{{"blocks.0.self_attn.q.weight", w}});
    EXPECT_TRUE(at::equal(w, w0));
}

TEST(LoraMerge, Fp8WeightsAreRequantisedAndRestoredExactly) {
    // Note [LoRA on fp8 weights]: codes ← quantise(dequantise(codes, scale) + delta); the restore puts the loaded
    // codes and scales back bit for bit, so a re-merge starts from them.
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    wan::dit::ModelOptions fp8;
    fp8.weight_dtype = wan::dit::WeightDtype::Fp8;
    wan::dit::WanModel model(ckpt.config(), ckpt.open_dit(), fp8);
    const auto base = snapshot(model);
    ASSERT_EQ(base.at("blocks.0.self_attn.q.weight").scalar_type(), at::kByte);
    const std::map<std::string, at::Tensor> delta = expected_deltas(accel("lora_native"), 0.7, native_module);
    wan::lora::LoraSet set;
    set.apply(model, {{accel("lora_native"), 0.7}});
    int requantised = 0;
    for (const auto& [name, t] : model.named_parameters()) {
        const auto d = delta.find(name);
        if (t.scalar_type() != at::kByte) {
            if (d == delta.end() && name.find("_scale") == std::string::npos)
                EXPECT_TRUE(at::equal(t, base.at(name))) << name << " changed";
            continue;
        }
        if (d == delta.end()) {
            EXPECT_TRUE(at::equal(t, base.at(name))) << name << " changed";
            continue;
        }
        ++requantised;
        const at::Tensor merged = wan::dit::dequantize_fp8(base.at(name), base.at(name + "_scale"), at::kFloat) +
                                  d->second.to(at::kFloat).reshape(t.sizes());
        // The delta here is float64 (the engine's is f32): scales agree to f32 rounding, codes but for rare ties.
        const wan::dit::Fp8Weight want = wan::dit::quantize_fp8(merged);
        at::Tensor scale;
        for (const auto& [n2, s] : model.named_parameters())
            if (n2 == name + "_scale") scale = s;
        ASSERT_TRUE(scale.defined()) << name;
        EXPECT_TRUE(wan::test::all_close(scale, want.scale, {0, 1e-6}, name + " scale"));
        EXPECT_GT((t == want.codes).to(at::kFloat).mean().item<float>(), 0.999f) << name;
        EXPECT_FALSE(at::equal(t, base.at(name))) << name << " did not change";
    }
    EXPECT_GT(requantised, 0);
    // Another strength re-merges from the base codes; an empty list restores them bit for bit.
    set.apply(model, {{accel("lora_native"), -0.3}});
    set.apply(model, {});
    for (const auto& [name, t] : model.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(name))) << name;
    EXPECT_EQ(set.backup_bytes(), 0);
}

}  // namespace
