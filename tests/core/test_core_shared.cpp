// The pieces engine/core holds once: UTF-8 decoding, filesystem helpers, model defaults, the batch-file
// format and the sidecar record.
#include "error_of.h"
#include "golden.h"

#include "core/batch_file.h"
#include "core/fs.h"
#include "core/model_defaults.h"
#include "core/sidecar.h"
#include "core/utf8.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

namespace {

using wan::test::error_of;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// GenerationRequest::from_json(json) fails with a message that contains `part`.
void expect_request_json_error(const std::string& json, const std::string& part) {
    EXPECT_TRUE(contains(error_of([&] { wan::GenerationRequest::from_json(json); }), part)) << json;
}

std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

// ---- UTF-8 ----------------------------------------------------------------------------------------------

TEST(Utf8, DecodesEveryLength) {
    const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
    EXPECT_EQ(wan::utf8::decode_strict(text, "t"), std::u32string(U"a\u00E9\u4E2D\U0001F600"));
    EXPECT_EQ(wan::utf8_from_u32(wan::utf8::decode_lossy(text)), text);
    const wan::utf8::Step s = wan::utf8::next("\xF0\x9F\x98\x80!");
    EXPECT_EQ(s.code_point, U'\U0001F600');
    EXPECT_EQ(s.size, 4u);
    EXPECT_EQ(s.problem, wan::utf8::Problem::None);
}

TEST(Utf8, NamesEachProblem) {
    using wan::utf8::Problem;
    const std::pair<const char*, Problem> cases[] = {
        {"\x80", Problem::InvalidLeadByte},     {"\xC1\xBF", Problem::InvalidLeadByte},
        {"\xF5\x80\x80\x80", Problem::InvalidLeadByte}, {"\xE4\xB8", Problem::Truncated},
        {"\xE4x", Problem::InvalidContinuation}, {"\xE0\x80\x80", Problem::Overlong},
        {"\xF0\x80\x80\x80", Problem::Overlong}, {"\xED\xA0\x80", Problem::Surrogate},
        {"\xF4\x90\x80\x80", Problem::AboveMax}};
    for (const auto& [bytes, problem] : cases) EXPECT_EQ(wan::utf8::next(bytes).problem, problem) << bytes;
}

TEST(Utf8, LossyReplacesEachMaximalSubpart) {
    const auto lossy = [](const std::string& s) { return wan::utf8::decode_lossy(s); };
    EXPECT_EQ(lossy("a\xE4\xB8" "b"), std::u32string(U"a\uFFFDb"));              // truncated: one U+FFFD
    EXPECT_EQ(lossy("a\xC0\xAF" "b"), std::u32string(U"a\uFFFD\uFFFDb"));        // overlong: each byte
    EXPECT_EQ(lossy("\xED\xA0\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD"));    // surrogate: each byte
    EXPECT_EQ(lossy("\xF0\x9F\x98"), std::u32string(U"\uFFFD"));                 // truncated 4-byte form
    EXPECT_EQ(lossy("\xF0\x9F\x98x"), std::u32string(U"\uFFFDx"));
}

TEST(Utf8, StrictNamesWhatOffsetAndByte) {
    const std::string msg = error_of([] { wan::utf8::decode_strict("ok \xFF", "prompt 2"); });
    EXPECT_TRUE(contains(msg, "prompt 2 is not valid UTF-8: invalid lead byte at byte offset 3 (byte 0xFF)")) << msg;
    EXPECT_TRUE(contains(error_of([] { wan::utf8::decode_strict("\xED\xA0\x80", "x"); }), "encoded surrogate"));
}

// ---- filesystem -----------------------------------------------------------------------------------------

TEST(Fs, AnswersWithoutThrowing) {
    const std::string dir = wan::test::make_temp_dir("corefs");
    const std::string file = write_file(dir + "/f.txt", "12345");
    EXPECT_TRUE(wan::fs::is_dir(dir));
    EXPECT_FALSE(wan::fs::is_file(dir));
    EXPECT_TRUE(wan::fs::is_file(file));
    EXPECT_FALSE(wan::fs::is_dir(file));
    EXPECT_EQ(wan::fs::file_size_or_zero(file), 5u);
    EXPECT_EQ(wan::fs::file_size_or_zero(dir + "/missing"), 0u);
    EXPECT_FALSE(wan::fs::is_file(dir + "/missing"));
}

TEST(Fs, MakesFoldersAndNamesTheOneItCannot) {
    const std::string dir = wan::test::make_temp_dir("corefs");
    wan::fs::make_dirs(dir + "/a/b/c");
    EXPECT_TRUE(wan::fs::is_dir(dir + "/a/b/c"));
    wan::fs::make_dirs(dir + "/a/b/c");  // already there: fine
    wan::fs::make_parent_dirs(dir + "/x/y/latents.safetensors");
    EXPECT_TRUE(wan::fs::is_dir(dir + "/x/y"));
    EXPECT_FALSE(wan::fs::is_dir(dir + "/x/y/latents.safetensors"));
    wan::fs::make_parent_dirs("no_folder_part.safetensors");  // nothing to create
    write_file(dir + "/plain", "x");
    const std::string msg = error_of([&] { wan::fs::make_dirs(dir + "/plain/sub"); });
    EXPECT_TRUE(contains(msg, "cannot create folder '" + dir + "/plain/sub'")) << msg;
}

// ---- model defaults -------------------------------------------------------------------------------------

TEST(ModelDefaults, TableRows) {
    const wan::ModelDefaults& small = wan::model_defaults("1.3B");
    EXPECT_EQ(small.width, 832);
    EXPECT_EQ(small.height, 480);
    EXPECT_EQ(small.frames, 81);
    EXPECT_EQ(small.steps, 50);
    EXPECT_EQ(small.sizes, (std::vector<std::string>{"832*480", "480*832"}));
    const wan::ModelDefaults& big = wan::model_defaults("14B");
    EXPECT_EQ(big.width, 1280);
    EXPECT_EQ(big.height, 720);
    EXPECT_EQ(big.sizes.front(), "1280*720");
    EXPECT_EQ(wan::model_defaults("something else").variant, "demo");
    for (const wan::ModelDefaults& row : wan::model_defaults_table()) {
        EXPECT_EQ(row.sizes.front(), std::to_string(row.width) + "*" + std::to_string(row.height)) << row.variant;
        EXPECT_EQ(row.frames % 4, 1) << row.variant;
        if (row.variant == "A14B") continue;  // Wan2.2's two experts: checked below
        EXPECT_EQ(row.shift, 5.0);
        EXPECT_EQ(row.guide_scale, 5.0);
        EXPECT_EQ(row.boundary, 0.0) << row.variant;  // one expert
    }
    // Wan2.2 T2V-A14B: shift 12, 40 steps, guide 3.0 (low-noise) / 4.0 (high-noise), switch at 0.875.
    const wan::ModelDefaults& a14b = wan::model_defaults("A14B");
    EXPECT_EQ(a14b.variant, "A14B");
    EXPECT_EQ(a14b.width, 1280);
    EXPECT_EQ(a14b.height, 720);
    EXPECT_EQ(a14b.frames, 81);
    EXPECT_EQ(a14b.steps, 40);
    EXPECT_EQ(a14b.shift, 12.0);
    EXPECT_EQ(a14b.guide_scale, 3.0);
    EXPECT_EQ(a14b.guide_scale_high, 4.0);
    EXPECT_EQ(a14b.boundary, 0.875);
    EXPECT_EQ(a14b.sizes, (std::vector<std::string>{"1280*720", "720*1280", "832*480", "480*832"}));
    wan::EngineInfo two;
    wan::apply_model_defaults(a14b, two);
    EXPECT_TRUE(two.two_experts);
    EXPECT_EQ(two.default_guide_scale_high, 4.0);
    EXPECT_EQ(two.default_boundary, 0.875);
    wan::EngineInfo info;
    wan::apply_model_defaults(wan::model_defaults("demo"), info);
    EXPECT_EQ(info.default_width, 128);
    EXPECT_EQ(info.default_frames, 17);
    EXPECT_EQ(info.default_steps, 8);
    EXPECT_EQ(info.sizes.size(), 4u);
}

TEST(ModelDefaults, NegativePromptIsUpstreams) {
    const std::u32string s = wan::utf8::decode_strict(wan::kDefaultNegativePrompt, "negative prompt");
    EXPECT_EQ(s.size(), 137u);
    EXPECT_EQ(s.front(), U'\u8272');  // 色
    EXPECT_EQ(std::count(s.begin(), s.end(), U'\uFF0C'), 27);  // full-width commas
}

// ---- batch file -----------------------------------------------------------------------------------------

TEST(BatchFile, PlainLinesArePromptsOverTheDefaults) {
    wan::GenerationRequest defaults;
    defaults.sample_steps = 7;
    defaults.job_id = 99;
    const auto jobs = wan::parse_batch_text("\xEF\xBB\xBF" "first\r\n\n# comment\n   \n  # indented comment\n second \n",
                                            defaults);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].prompt, "first");  // BOM and CR gone
    EXPECT_EQ(jobs[1].prompt, "second");
    for (const auto& j : jobs) {
        EXPECT_EQ(j.sample_steps, 7);
        EXPECT_EQ(j.job_id, 0);  // the session's to assign
    }
}

TEST(BatchFile, JsonLinesSetPerJobOptions) {
    wan::GenerationRequest defaults;
    defaults.width = 832;
    defaults.height = 480;
    const auto jobs = wan::parse_batch_text(
        "{\"prompt\": \"a fox\", \"size\": \"480*832\", \"base_seed\": 42, \"sample_solver\": \"dpm++\"}\n", defaults);
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].width, 480);
    EXPECT_EQ(jobs[0].height, 832);
    EXPECT_EQ(jobs[0].seed, 42);
    EXPECT_EQ(jobs[0].solver, "dpm++");
}

TEST(BatchFile, UnknownKeyNamesLineAndKey) {
    const std::string msg = error_of([] {
        wan::parse_batch_text("# jobs\nok\n{\"prompt\": \"x\", \"steps\": 3}\n", {}, "--batch jobs.txt");
    });
    EXPECT_TRUE(contains(msg, "--batch jobs.txt, line 3: unknown key \"steps\"")) << msg;
    // job_id belongs to the session, not to the file.
    EXPECT_TRUE(contains(error_of([] { wan::parse_batch_text("{\"prompt\": \"x\", \"job_id\": 3}", {}); }),
                         "unknown key \"job_id\""));
}

TEST(BatchFile, BadLinesNameTheirLine) {
    EXPECT_TRUE(contains(error_of([] { wan::parse_batch_text("a\n{\"prompt\": \"x\",}", {}); }),
                         "batch file, line 2: not valid JSON"));
    EXPECT_TRUE(contains(error_of([] { wan::parse_batch_text("{\"prompt\": 5}", {}); }), "line 1"));
    EXPECT_TRUE(contains(error_of([] { wan::parse_batch_text("{\"size\": \"832*480\"}", {}); }),
                         "line 1: the prompt is empty"));
    EXPECT_TRUE(contains(error_of([] { wan::parse_batch_text("\n\n{\"prompt\": \"x\", \"frame_num\": 10}", {}); }),
                         "line 3: frame_num"));
}

TEST(BatchFile, ReadsFilesAndRejectsEmptyOnes) {
    const std::string dir = wan::test::make_temp_dir("batch");
    const auto jobs = wan::read_batch_file(write_file(dir + "/jobs.txt", "one\n{\"prompt\": \"two\"}\n"), {});
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[1].prompt, "two");
    const std::string empty = write_file(dir + "/empty.txt", "\xEF\xBB\xBF# nothing\n\n");
    EXPECT_TRUE(contains(error_of([&] { wan::read_batch_file(empty, {}); }), "--batch " + empty + ": no prompts"));
    EXPECT_TRUE(contains(error_of([&] { wan::read_batch_file(dir + "/missing.txt", {}); }),
                         "--batch " + dir + "/missing.txt: cannot open the file"));
}

// ---- sidecar --------------------------------------------------------------------------------------------

wan::GenerationSidecar sample_sidecar(int dit_steps_computed) {
    const auto r = wan::GenerationRequest::from_json(
        R"({"prompt": "a fox", "negative_prompt": "dark", "size": "832*480", "frame_num": 81, "sample_steps": 50})");
    wan::GenerationResult res;
    res.status = wan::JobStatus::Ok;
    res.seed_used = 77;
    res.prompt_used = "a fox";
    res.video_path = "/out/a.mp4";
    wan::EngineInfo info;
    info.world_size = 2;
    info.ulysses_size = 2;
    info.dit_fsdp = true;
    info.model_variant = "1.3B";
    info.device = "cpu";
    return wan::make_sidecar(r, res, info, "libx264", 0.1, dit_steps_computed);
}

TEST(Sidecar, WritesTheKeysHistoryAndToolsRead) {
    const nlohmann::json j = nlohmann::json::parse(sample_sidecar(31).to_json());
    std::set<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
    // Request keys, result keys (empty strings such as poster_path and message left out), engine facts.
    const std::set<std::string> expected = {
        "prompt", "negative_prompt", "width", "height", "frame_num", "sample_steps", "sample_shift",
        "sample_guide_scale", "sample_solver", "base_seed", "output_dir", "init_noise", "save_latents",
        "use_prompt_extend", "prompt_extend_target_lang", "original_prompt", "job_id", "status", "seed_used",
        "prompt_used", "video_path", "seconds", "size", "model", "device", "layout", "codec", "program", "fps",
        "teacache_threshold", "dit_steps_computed",
        // issue 20: the job's LoRAs (paths, strengths), euler's step list and the preset name
        "loras", "denoising_steps", "preset"};
    EXPECT_EQ(keys, expected);
    EXPECT_EQ(j["size"], "832*480");
    EXPECT_EQ(j["layout"], "world 2, ulysses 2 × ring 1, dit_fsdp");
    EXPECT_EQ(j["program"], std::string("WanStudio ") + wan::version_string());
    EXPECT_EQ(j["fps"], 16);
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["dit_steps_computed"], 31);
    EXPECT_FALSE(nlohmann::json::parse(sample_sidecar(-1).to_json()).contains("dit_steps_computed"));
}

// ---- LoRAs, step lists and presets in the request (issue 20) ------------------------------------------

TEST(Request, LorasStepsAndPresetRoundTrip) {
    wan::GenerationRequest r;
    r.prompt = "a kite";
    r.solver = "euler";
    r.denoising_steps = {1000, 750, 500, 250};
    r.loras = {{"/l/a.safetensors", 0.8}, {"/l/b.safetensors", -1.0}};
    r.preset = "lightx2v-4step";
    const wan::GenerationRequest back = wan::GenerationRequest::from_json(r.to_json());
    EXPECT_EQ(back.denoising_steps, r.denoising_steps);
    EXPECT_EQ(back.loras, r.loras);
    EXPECT_EQ(back.preset, r.preset);
    EXPECT_EQ(back.to_json(), r.to_json());
    EXPECT_TRUE(r.validate().empty());
    // Old records (no such keys) read as no LoRA and no step list.
    const auto old = wan::GenerationRequest::from_json("{\"prompt\": \"x\"}");
    EXPECT_TRUE(old.loras.empty() && old.denoising_steps.empty() && old.preset.empty());
}

TEST(Request, ValidatesStepListsAndLoras) {
    wan::GenerationRequest r;
    r.denoising_steps = {1000, 500};
    auto joined = [](const std::vector<std::string>& v) {
        std::string all;
        for (const auto& e : v) all += e + "\n";
        return all;
    };
    EXPECT_TRUE(contains(joined(r.validate()), "denoising_steps: only with sample_solver 'euler' (got 'unipc')"));
    r.solver = "euler";
    EXPECT_TRUE(r.validate().empty());
    r.denoising_steps = {1000, 1000};
    EXPECT_TRUE(contains(joined(r.validate()), "strictly decreasing (1000 follows 1000)"));
    r.denoising_steps = {0};
    EXPECT_TRUE(contains(joined(r.validate()), "step 0 is outside 1..1000"));
    r.denoising_steps.clear();
    r.solver = "heun";
    EXPECT_TRUE(contains(joined(r.validate()), "expected 'unipc', 'dpm++' or 'euler'"));
    expect_request_json_error("{\"loras\": [{\"strength\": 1}]}",
                              "each entry of \"loras\" must be an object with a string \"path\"");
    expect_request_json_error("{\"loras\": [{\"path\": \"a\", \"scale\": 1}]}",
                              "LoRA 'a': unknown key \"scale\"");
}

TEST(BatchFile, LorasStepsAndPresetPerLine) {
    wan::GenerationRequest defaults;
    defaults.sample_steps = 50;
    const auto jobs = wan::parse_batch_text(
        "{\"prompt\": \"a\", \"loras\": [{\"path\": \"/l/a.safetensors\", \"strength\": 0.5}, {\"path\": \"b\"}]}\n"
        "{\"prompt\": \"b\", \"preset\": \"lightx2v-4step\", \"sample_shift\": 3}\n"
        "{\"prompt\": \"c\", \"sample_solver\": \"euler\", \"denoising_steps\": [999, 500]}\n",
        defaults);
    ASSERT_EQ(jobs.size(), 3u);
    EXPECT_EQ(jobs[0].loras, (std::vector<wan::LoraSpec>{{"/l/a.safetensors", 0.5}, {"b", 1.0}}));
    EXPECT_EQ(jobs[1].preset, "lightx2v-4step");
    EXPECT_EQ(jobs[1].solver, "euler");
    EXPECT_EQ(jobs[1].denoising_steps, (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_EQ(jobs[1].sample_shift, 3);  // the line's own key wins over the preset
    EXPECT_EQ(jobs[1].guide_scale, 1);
    EXPECT_EQ(jobs[2].denoising_steps, (std::vector<int>{999, 500}));
    EXPECT_TRUE(jobs[2].loras.empty());
    EXPECT_TRUE(contains(error_of([&] { wan::parse_batch_text("{\"prompt\": \"a\", \"preset\": \"x\"}\n", defaults, "f"); }),
                         "f, line 1: preset 'x': unknown preset (known: 'default', 'lightx2v-4step')"));
    EXPECT_TRUE(contains(error_of([&] { wan::parse_batch_text("{\"prompt\": \"a\", \"denoising_steps\": [5, 9]}\n", defaults, "f"); }),
                         "f, line 1: denoising_steps: only with sample_solver 'euler'"));
}

TEST(Sidecar, RecordsEachLora) {
    wan::GenerationSidecar s = sample_sidecar(4);
    s.request.loras = {{"/l/distill.safetensors", 1.0}};
    s.request.solver = "euler";
    s.request.denoising_steps = {1000, 750, 500, 250};
    s.request.preset = "lightx2v-4step";
    s.lora_files = {{"distill.safetensors", std::string(64, 'a'), 1.0}};
    const std::string text = s.to_json();
    const nlohmann::json j = nlohmann::json::parse(text);
    EXPECT_EQ(j.at("lora_files").at(0).at("sha256"), std::string(64, 'a'));
    EXPECT_EQ(j.at("loras").at(0).at("path"), "/l/distill.safetensors");
    EXPECT_EQ(j.at("preset"), "lightx2v-4step");
    const wan::GenerationSidecar back = wan::GenerationSidecar::from_json(text, "a.json");
    EXPECT_EQ(back.lora_files, s.lora_files);
    EXPECT_EQ(back.request.loras, s.request.loras);
    EXPECT_EQ(back.request.denoising_steps, s.request.denoising_steps);
    EXPECT_EQ(back.to_json(), text);
}

// ---- per-expert LoRAs of a two-expert model (issue 22) -------------------------------------------------

TEST(Request, PerExpertLorasRoundTrip) {
    wan::GenerationRequest r;
    r.prompt = "a kite";
    r.loras = {{"/l/both.safetensors", 0.5}};
    r.loras_high = {{"/l/high.safetensors", 1.0}};
    r.loras_low = {{"/l/low.safetensors", 0.8}, {"/l/low2.safetensors", -1.0}};
    const std::string text = r.to_json();
    const wan::GenerationRequest back = wan::GenerationRequest::from_json(text);
    EXPECT_EQ(back.loras, r.loras);
    EXPECT_EQ(back.loras_high, r.loras_high);
    EXPECT_EQ(back.loras_low, r.loras_low);
    EXPECT_EQ(back.to_json(), text);
    EXPECT_TRUE(r.validate().empty());
    // A request without per-expert LoRAs keeps its keys (no "loras_high" / "loras_low").
    r.loras_high.clear();
    r.loras_low.clear();
    const nlohmann::json j = nlohmann::json::parse(r.to_json());
    EXPECT_FALSE(j.contains("loras_high") || j.contains("loras_low"));
    // Bad entries name their key.
    r.loras_low = {{"", 1.0}};
    r.loras_high = {{"/l/h.safetensors", std::nan("")}};
    std::string all;
    for (const auto& e : r.validate()) all += e + "\n";
    EXPECT_TRUE(contains(all, "loras_low: an entry has an empty path")) << all;
    EXPECT_TRUE(contains(all, "loras_high: '/l/h.safetensors' has a strength that is not a finite number")) << all;
    expect_request_json_error("{\"loras_high\": {\"path\": \"a\"}}",
                              "field \"loras_high\" must be a list");
    expect_request_json_error("{\"loras_low\": [{\"strength\": 1}]}",
                              "each entry of \"loras_low\" must be an object with a string \"path\"");
}

TEST(BatchFile, PerExpertLorasPerLine) {
    wan::GenerationRequest defaults;
    defaults.loras_high = {{"/l/default_high.safetensors", 1.0}};
    const auto jobs = wan::parse_batch_text(
        "{\"prompt\": \"a\", \"loras_high\": [{\"path\": \"/l/h.safetensors\"}], "
        "\"loras_low\": [{\"path\": \"/l/l.safetensors\", \"strength\": 0.7}]}\n"
        "{\"prompt\": \"b\"}\n",
        defaults);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].loras_high, (std::vector<wan::LoraSpec>{{"/l/h.safetensors", 1.0}}));
    EXPECT_EQ(jobs[0].loras_low, (std::vector<wan::LoraSpec>{{"/l/l.safetensors", 0.7}}));
    EXPECT_EQ(jobs[1].loras_high, defaults.loras_high);  // the command line's, as for "loras"
    EXPECT_TRUE(jobs[1].loras_low.empty());
}

TEST(Sidecar, RecordsTheExpertOfPerExpertLoras) {
    wan::GenerationSidecar s = sample_sidecar(4);
    s.request.loras_high = {{"/l/high.safetensors", 1.0}};
    s.request.loras_low = {{"/l/low.safetensors", 0.5}};
    s.lora_files = {{"high.safetensors", std::string(64, 'b'), 1.0, "high"},
                    {"low.safetensors", std::string(64, 'c'), 0.5, "low"}};
    const std::string text = s.to_json();
    const nlohmann::json j = nlohmann::json::parse(text);
    EXPECT_EQ(j.at("lora_files").at(0).at("expert"), "high");
    EXPECT_EQ(j.at("lora_files").at(1).at("expert"), "low");
    EXPECT_EQ(j.at("loras_high").at(0).at("path"), "/l/high.safetensors");
    const wan::GenerationSidecar back = wan::GenerationSidecar::from_json(text, "a.json");
    EXPECT_EQ(back.lora_files, s.lora_files);
    EXPECT_EQ(back.request.loras_low, s.request.loras_low);
    EXPECT_EQ(back.to_json(), text);
    // A LoRA of the whole model has no "expert" key; an unknown expert is refused.
    s.lora_files = {{"both.safetensors", std::string(64, 'a'), 1.0}};
    EXPECT_FALSE(nlohmann::json::parse(s.to_json()).at("lora_files").at(0).contains("expert"));
    nlohmann::json bad = j;
    bad["lora_files"][0]["expert"] = "middle";
    EXPECT_TRUE(contains(error_of([&] { wan::GenerationSidecar::from_json(bad.dump(), "b.json"); }),
                         "b.json: \"lora_files\": \"expert\" must be \"high\" or \"low\" (got \"middle\")"));
}

TEST(Sidecar, ReadsBackWhatItWrites) {
    const wan::GenerationSidecar s = wan::GenerationSidecar::from_json(sample_sidecar(31).to_json(), "a.json");
    EXPECT_TRUE(s.has_result);
    EXPECT_EQ(s.request.prompt, "a fox");
    EXPECT_EQ(s.request.negative_prompt, "dark");
    EXPECT_EQ(s.result.seed_used, 77);
    EXPECT_EQ(s.result.video_path, "/out/a.mp4");
    EXPECT_EQ(s.model, "1.3B");
    EXPECT_EQ(s.codec, "libx264");
    EXPECT_EQ(s.teacache_threshold, 0.1);
    EXPECT_EQ(s.dit_steps_computed, 31);
    EXPECT_EQ(s.to_json(), sample_sidecar(31).to_json());
}

TEST(Sidecar, ReaderAcceptsOldRecordsAndNamesTheFile) {
    const wan::GenerationSidecar old = wan::GenerationSidecar::from_json("{\"prompt\": \"p\", \"size\": \"480*832\"}", "o.json");
    EXPECT_FALSE(old.has_result);
    EXPECT_EQ(old.result.status, wan::JobStatus::Ok);  // a record without status describes a finished video
    EXPECT_EQ(old.request.width, 480);
    EXPECT_TRUE(old.model.empty());
    EXPECT_TRUE(contains(error_of([] { wan::GenerationSidecar::from_json("{oops", "b.json"); }), "b.json: not valid JSON"));
    EXPECT_TRUE(contains(error_of([] { wan::GenerationSidecar::from_json("[1]", "c.json"); }), "c.json: expected a JSON object"));
    EXPECT_TRUE(contains(error_of([] { wan::GenerationSidecar::from_json("{\"a\": 1}", "d.json"); }), "d.json: no \"prompt\""));
    EXPECT_TRUE(contains(error_of([] { wan::GenerationSidecar::from_json("{\"prompt\": \"p\", \"fps\": \"x\"}", "e.json"); }),
                         "e.json: field \"fps\" has the wrong type"));
}

}  // namespace
