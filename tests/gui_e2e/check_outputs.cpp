// wan-check-outputs: checks what `wanstudio` left in an output folder, the way a user's player and the GUI's
// history would read it. Every *.mp4 must decode with the expected frame count, size and 16 fps and carry the
// prompt and seed tags; its PNG poster and JSON sidecar must exist beside it, and the JSON must parse with the
// keys the history reads, agreeing with the MP4's tags.
//
//   wan-check-outputs DIR --count N --size W*H --frames F
//                     [--prompt TEXT]...           every listed prompt has one video (as the user typed it)
//                     [--original-prompt TEXT]     the prompt was extended: original_prompt == TEXT in the
//                                                  JSON and the MP4 tags, prompt non-empty and different
//
// Prints one line per video, then the number of checks that held and failed; exits 0 only when every check passed.
#include "video/video.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Expect {
    std::string dir;
    int count = -1, width = 0, height = 0, frames = 0;
    std::vector<std::string> prompts;
    std::string original_prompt;
};

int passed = 0, failed = 0;

void check(bool ok, const std::string& what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::printf("  FAIL: %s\n", what.c_str());
    }
}

std::string tag(const wan::video::VideoInfo& info, const std::string& key) {
    auto it = info.tags.find(key);
    return it == info.tags.end() ? std::string() : it->second;
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "wan-check-outputs: %s\nusage: wan-check-outputs DIR --count N --size W*H --frames F "
                         "[--prompt TEXT]... [--original-prompt TEXT]\n", why);
    std::exit(2);
}

Expect parse(int argc, char** argv) {
    Expect e;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        if (a == "--count") e.count = std::atoi(value().c_str());
        else if (a == "--frames") e.frames = std::atoi(value().c_str());
        else if (a == "--size") {
            std::string s = value();
            if (std::sscanf(s.c_str(), "%d*%d", &e.width, &e.height) != 2) usage("--size expects W*H");
        } else if (a == "--prompt") e.prompts.push_back(value());
        else if (a == "--original-prompt") e.original_prompt = value();
        else if (!a.empty() && a[0] == '-') usage(("unknown option " + a).c_str());
        else e.dir = a;
    }
    if (e.dir.empty()) usage("no folder given");
    return e;
}

void check_one(const Expect& e, const fs::path& mp4, std::set<std::string>& prompts_seen) {
    std::printf("%s\n", mp4.string().c_str());
    wan::video::VideoInfo info;
    try {
        info = wan::video::probe_video(mp4.string());
    } catch (const std::exception& ex) {
        check(false, std::string("the MP4 does not decode: ") + ex.what());
        return;
    }
    check(info.frames == e.frames, "frames " + std::to_string(info.frames) + ", expected " + std::to_string(e.frames));
    check(info.width == e.width && info.height == e.height,
          "size " + std::to_string(info.width) + "x" + std::to_string(info.height) + ", expected " +
              std::to_string(e.width) + "x" + std::to_string(e.height));
    check(info.fps > 15.99 && info.fps < 16.01, "fps " + std::to_string(info.fps) + ", expected 16");
    const std::string tag_prompt = tag(info, "prompt"), tag_seed = tag(info, "seed");
    check(!tag_prompt.empty(), "MP4 tag 'prompt' missing");
    check(!tag_seed.empty(), "MP4 tag 'seed' missing");

    const fs::path png = fs::path(mp4).replace_extension(".png");
    check(fs::exists(png), "poster " + png.string() + " missing");
    if (fs::exists(png)) {
        try {
            wan::video::VideoInfo p = wan::video::probe_video(png.string());
            check(p.width == e.width && p.height == e.height, "poster size differs from the video");
        } catch (const std::exception& ex) {
            check(false, std::string("the poster does not decode: ") + ex.what());
        }
    }

    const fs::path json_path = fs::path(mp4).replace_extension(".json");
    check(fs::exists(json_path), "JSON sidecar " + json_path.string() + " missing");
    if (!fs::exists(json_path)) return;
    nlohmann::json j;
    try {
        std::ifstream in(json_path);
        j = nlohmann::json::parse(in);
    } catch (const std::exception& ex) {
        check(false, std::string("the JSON does not parse: ") + ex.what());
        return;
    }
    for (const char* key : {"prompt", "negative_prompt", "base_seed", "seed_used", "size", "width", "height",
                            "frame_num", "sample_steps", "sample_shift", "sample_guide_scale", "sample_solver",
                            "model", "status", "fps", "prompt_used"})
        check(j.contains(key), std::string("JSON key '") + key + "' missing");
    if (!j.contains("prompt") || !j.contains("seed_used") || !j.contains("frame_num")) return;
    check(j.value("status", "") == "ok", "JSON status is not ok");
    check(j["frame_num"] == e.frames, "JSON frame_num differs");
    check(j.value("size", "") == std::to_string(e.width) + "*" + std::to_string(e.height), "JSON size differs");
    check(j.value("fps", 0) == 16, "JSON fps is not 16");
    check(j["prompt"].get<std::string>() == tag_prompt, "JSON prompt and MP4 tag 'prompt' differ");
    check(std::to_string(j["seed_used"].get<int64_t>()) == tag_seed, "JSON seed_used and MP4 tag 'seed' differ");
    const std::string original = j.value("original_prompt", "");
    if (!e.original_prompt.empty()) {
        check(original == e.original_prompt, "JSON original_prompt '" + original + "', expected '" + e.original_prompt + "'");
        check(tag(info, "original_prompt") == e.original_prompt, "MP4 tag 'original_prompt' differs from the original");
        check(!j["prompt"].get<std::string>().empty() && j["prompt"] != e.original_prompt,
              "JSON prompt is not the extended prompt");
        prompts_seen.insert(original);
    } else {
        check(original.empty() && tag(info, "original_prompt").empty(), "original_prompt set for a job not extended");
        prompts_seen.insert(j["prompt"].get<std::string>());
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Expect e = parse(argc, argv);
    std::vector<fs::path> videos;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(e.dir, ec))
        if (entry.path().extension() == ".mp4") videos.push_back(entry.path());
    std::sort(videos.begin(), videos.end());
    if (e.count >= 0)
        check(static_cast<int>(videos.size()) == e.count,
              std::to_string(videos.size()) + " videos in " + e.dir + ", expected " + std::to_string(e.count));
    std::set<std::string> prompts_seen;
    for (const auto& v : videos) check_one(e, v, prompts_seen);
    for (const auto& p : e.prompts) check(prompts_seen.count(p) == 1, "no video for the prompt '" + p + "'");
    std::printf("wan-check-outputs: %d checks ok, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
