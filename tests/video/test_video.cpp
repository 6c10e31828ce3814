// Video writer round trips (MP4 + metadata, poster PNG, JSON), encoder fallback, output naming, never
// overwriting, and output-directory checks.
#include "error_of.h"
#include "file_bytes.h"
#include "golden.h"  // make_temp_dir
#include <set>
#include <thread>
#include "core/core.h"
#include "video/video.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace wan::video;

namespace wan::video::detail {  // private to engine/video (ffmpeg_util.h), declared here for the test
std::string temp_path_for(const std::string& final_path);
std::string create_temp_file(const std::string& final_path);
}  // namespace wan::video::detail

namespace {

using wan::test::error_of;
using wan::test::file_bytes;

// A smooth moving gradient: decodes well after yuv420p subsampling.
std::vector<uint8_t> gradient(int frames, int height, int width) {
    std::vector<uint8_t> v(static_cast<size_t>(frames) * height * width * 3);
    size_t k = 0;
    for (int f = 0; f < frames; ++f)
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x) {
                v[k++] = static_cast<uint8_t>((x * 255) / (width - 1));
                v[k++] = static_cast<uint8_t>((y * 255) / (height - 1));
                v[k++] = static_cast<uint8_t>((f * 255) / std::max(1, frames - 1));
            }
    return v;
}

void expect_close(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, double mean_tol, int max_tol,
                  const std::string& label) {
    ASSERT_EQ(got.size(), want.size()) << label;
    double sum = 0;
    int worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const int d = std::abs(static_cast<int>(got[i]) - static_cast<int>(want[i]));
        sum += d;
        if (d > worst) {
            worst = d;
            worst_at = i;
        }
    }
    const double mean = sum / static_cast<double>(got.size());
    std::printf("%s: mean |diff| %.3f, worst |diff| %d\n", label.c_str(), mean, worst);
    EXPECT_LE(mean, mean_tol) << label << ": mean |diff| " << mean;
    EXPECT_LE(worst, max_tol) << label << ": worst |diff| " << worst << " at byte " << worst_at << " (got "
                              << int(got[worst_at]) << ", want " << int(want[worst_at]) << ")";
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

TEST(Video, WriteProbeDecodeMp4) {
    const int F = 9, H = 48, W = 64;
    const auto rgb = gradient(F, H, W);
    const std::string dir = wan::test::make_temp_dir("video");
    const std::string path = dir + "/clip.mp4";
    VideoWriteOptions opts;
    opts.metadata = {{"prompt", "A red fox, running — in snow"}, {"negative_prompt", "blurry"}, {"seed", "42"},
                     {"size", "64*48"}, {"frames", "9"}, {"steps", "50"}, {"shift", "5"}, {"guide_scale", "5"},
                     {"solver", "unipc"}, {"model", "t2v-1.3B"}, {"program_version", wan::version_string()}};
    const VideoWriteResult r = write_mp4(path, {rgb.data(), F, H, W}, opts);
    EXPECT_EQ(r.codec, "libx264");  // Debian's FFmpeg has it; the fallback is tested below
    EXPECT_EQ(r.frames, F);
    EXPECT_GT(r.bytes, 0);
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"clip.mp4"});  // no temporary file left

    VideoInfo info;
    const auto back = decode_frames(path, &info);
    EXPECT_EQ(info.frames, F);
    EXPECT_EQ(info.width, W);
    EXPECT_EQ(info.height, H);
    EXPECT_NEAR(info.fps, 16.0, 1e-9);
    EXPECT_EQ(info.codec, "h264");
    EXPECT_EQ(info.pix_fmt, "yuv420p");
    for (const auto& [k, v] : opts.metadata) {
        ASSERT_TRUE(info.tags.count(k)) << "metadata key '" << k << "' missing";
        EXPECT_EQ(info.tags.at(k), v) << k;
    }
    // yuv420p halves the chroma resolution and H.264 at crf 18 is lossy: loose tolerance.
    expect_close(back, rgb, 2.5, 24, "decoded mp4");

    const VideoInfo probed = probe_video(path);
    EXPECT_EQ(probed.frames, F);
    EXPECT_EQ(probed.tags.at("seed"), "42");
}

TEST(Video, EncoderFallbackAndErrors) {
    const int F = 5, H = 32, W = 48;
    const auto rgb = gradient(F, H, W);
    const std::string dir = wan::test::make_temp_dir("video_fb");
    VideoWriteOptions opts;
    opts.encoders = {"no_such_encoder", "mpeg4"};
    opts.fps = 8;
    opts.metadata = {{"prompt", "fallback"}};
    const VideoWriteResult r = write_mp4(dir + "/a.mp4", {rgb.data(), F, H, W}, opts);
    EXPECT_EQ(r.codec, "mpeg4");
    VideoInfo info;
    const auto back = decode_frames(dir + "/a.mp4", &info);
    EXPECT_EQ(info.codec, "mpeg4");
    EXPECT_EQ(info.frames, F);
    EXPECT_NEAR(info.fps, 8.0, 1e-9);
    EXPECT_EQ(info.tags.at("prompt"), "fallback");
    expect_close(back, rgb, 2.5, 32, "decoded mpeg4");

    opts.encoders = {"no_such_encoder", "also_missing"};
    std::string msg = error_of([&] { write_mp4(dir + "/b.mp4", {rgb.data(), F, H, W}, opts); });
    EXPECT_NE(msg.find("no usable video encoder"), std::string::npos) << msg;
    EXPECT_NE(msg.find("also_missing: not in this FFmpeg build"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(dir + "/b.mp4"));

    msg = error_of([&] { write_mp4(dir + "/c.mp4", {rgb.data(), F, 33, W}, {}); });
    EXPECT_NE(msg.find("must be even"), std::string::npos) << msg;
    msg = error_of([&] { write_mp4(dir + "/c.mp4", {rgb.data(), 0, H, W}, {}); });
    EXPECT_NE(msg.find("frame count must be >= 1"), std::string::npos) << msg;
    VideoWriteOptions bad;
    bad.crf = 60;
    msg = error_of([&] { write_mp4(dir + "/c.mp4", {rgb.data(), F, H, W}, bad); });
    EXPECT_NE(msg.find("crf must be in 0..51"), std::string::npos) << msg;
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"a.mp4"});  // failures leave nothing behind

    msg = error_of([&] { probe_video(dir + "/missing.mp4"); });
    EXPECT_NE(msg.find("opening '" + dir + "/missing.mp4' for reading"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

size_t open_file_count() {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) n += e.is_symlink() ? 1 : 0;
    return n;
}

TEST(Video, HeaderFailureClosesTheFile) {
    // rawvideo opens as an encoder but the MP4 muxer has no tag for it: avformat_write_header fails after
    // the output file was opened. The file must be closed (it used to leak) and its temporary name removed.
    const int F = 1, H = 16, W = 16;
    const auto rgb = gradient(F, H, W);
    const std::string dir = wan::test::make_temp_dir("video_hdr");
    VideoWriteOptions opts;
    opts.encoders = {"rawvideo"};
    const size_t before = open_file_count();
    for (int k = 0; k < 3; ++k) {
        std::string msg = error_of([&] { write_mp4(dir + "/raw.mp4", {rgb.data(), F, H, W}, opts); });
        EXPECT_NE(msg.find("writing the MP4 header"), std::string::npos) << msg;
    }
    EXPECT_EQ(open_file_count(), before) << "write_mp4 left files open after a failed header";
    EXPECT_TRUE(list_dir(dir).empty());
}

TEST(Video, TemporaryFilesAreCreatedExclusively) {
    // A link planted at the next temporary name is never followed: create_temp_file takes another name and the
    // file the link points at keeps its contents. Names are ".<final>.<pid>.<counter>.part".
    const std::string dir = wan::test::make_temp_dir("video_tmp");
    const std::string victim = dir + "/victim.txt";
    { std::ofstream(victim) << "keep me"; }
    const std::string seen = wan::video::detail::temp_path_for(dir + "/x.mp4");
    const size_t end = seen.rfind(".part"), start = seen.rfind('.', end - 1) + 1;
    const unsigned counter = static_cast<unsigned>(std::stoul(seen.substr(start, end - start)));
    const std::string planted = seen.substr(0, start) + std::to_string(counter + 1) + ".part";
    ASSERT_EQ(::symlink(victim.c_str(), planted.c_str()), 0);
    const std::string made = wan::video::detail::create_temp_file(dir + "/x.mp4");
    EXPECT_NE(made, planted);
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(made)));
    EXPECT_TRUE(fs::is_symlink(fs::symlink_status(planted)));
    std::ifstream in(victim);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "keep me");
}

TEST(Video, SanitizeNames) {
    EXPECT_EQ(sanitize_filename("A red fox"), "a_red_fox");
    EXPECT_EQ(sanitize_filename("  a/b\\\\c*d?e:f|g\"h<i>j  "), "a_b_c_d_e_f_g_h_i_j");
    EXPECT_EQ(sanitize_filename("../../etc/passwd"), "etc_passwd");
    EXPECT_EQ(sanitize_filename("\xE4\xB8\x80\xE5\x8F\xAA\xE7\x8B\x90\xE7\x8B\xB8 fox \xF0\x9F\xA6\x8A!"), "fox");
    EXPECT_EQ(sanitize_filename("\xE4\xB8\x80\xE5\x8F\xAA\xE7\x8B\x90\xE7\x8B\xB8"), "video");
    EXPECT_EQ(sanitize_filename(""), "video");
    EXPECT_EQ(sanitize_filename("***"), "video");
    EXPECT_EQ(sanitize_filename("keep-dash_and_underscore"), "keep-dash_and_underscore");
    std::string long_prompt;
    for (int i = 0; i < 200; ++i) long_prompt += "word" + std::to_string(i) + " ";
    const std::string s = sanitize_filename(long_prompt, 48);
    EXPECT_LE(s.size(), 48u);
    EXPECT_GE(s.size(), 24u);
    EXPECT_NE(s.back(), '_');
    EXPECT_EQ(s.rfind("word0_word1", 0), 0u);
    const std::string one_word(300, 'x');
    EXPECT_EQ(sanitize_filename(one_word, 40), std::string(40, 'x'));
    for (char c : sanitize_filename("Ünïcödé / * ? weird\ttabs\nnewlines"))
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') << c;

    std::tm tm{};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 24;
    tm.tm_hour = 15;
    tm.tm_min = 30;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    const std::time_t when = std::mktime(&tm);  // local time, as make_output_stem formats it
    EXPECT_EQ(make_output_stem(when, "a red fox"), "20261124_153000_a_red_fox");
}

TEST(Video, SaveOutputsNeverOverwrites) {
    const int F = 7, H = 32, W = 32;
    const auto rgb = gradient(F, H, W);
    const std::string dir = wan::test::make_temp_dir("video_save") + "/sub/dir";  // created on demand
    SaveOptions so;
    so.dir = dir;
    so.prompt = "A red fox / in *snow*";
    so.when = 1700000000;
    so.poster = PosterFrame::Middle;
    so.video.metadata = {{"prompt", so.prompt}, {"seed", "7"}};
    const SavedOutputs a = save_outputs(so, {rgb.data(), F, H, W});
    const std::string stem = make_output_stem(so.when, so.prompt);
    EXPECT_EQ(a.video_path, dir + "/" + stem + ".mp4");
    EXPECT_EQ(a.poster_path, dir + "/" + stem + ".png");
    EXPECT_EQ(a.json_path, dir + "/" + stem + ".json");
    EXPECT_EQ(a.codec, "libx264");
    EXPECT_NE(stem.find("_a_red_fox_in_snow"), std::string::npos) << stem;

    // The JSON side file holds the metadata.
    const std::string json = file_bytes(a.json_path);
    EXPECT_NE(json.find("\"prompt\": \"A red fox / in *snow*\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"seed\": \"7\""), std::string::npos) << json;

    // The poster decodes (PNG is lossless) to exactly the middle frame.
    VideoInfo pinfo;
    const auto poster = decode_frames(a.poster_path, &pinfo);
    EXPECT_EQ(pinfo.codec, "png");
    EXPECT_EQ(pinfo.frames, 1);
    EXPECT_EQ(pinfo.width, W);
    EXPECT_EQ(pinfo.height, H);
    const size_t fb = static_cast<size_t>(H) * W * 3;
    EXPECT_TRUE(std::equal(poster.begin(), poster.end(), rgb.begin() + static_cast<long>(fb * (F / 2))));

    // Same time and prompt again: _1, then _2; nothing is replaced.
    const std::string first_video = file_bytes(a.video_path);
    so.json_text = "{\"custom\": true}\n";
    so.poster = PosterFrame::First;
    const SavedOutputs b = save_outputs(so, {rgb.data(), F, H, W});
    EXPECT_EQ(b.video_path, dir + "/" + stem + "_1.mp4");
    EXPECT_EQ(file_bytes(b.json_path), so.json_text);
    const auto poster_b = decode_frames(b.poster_path);
    EXPECT_TRUE(std::equal(poster_b.begin(), poster_b.end(), rgb.begin()));
    const SavedOutputs c = save_outputs(so, {rgb.data(), F, H, W});
    EXPECT_EQ(c.video_path, dir + "/" + stem + "_2.mp4");
    EXPECT_EQ(file_bytes(a.video_path), first_video);
    EXPECT_EQ(list_dir(dir).size(), 9u);  // three complete sets, no temporary files

    // A taken name blocks the whole set: only a .json with the next stem exists -> _3 is skipped.
    write_text_file(dir + "/" + stem + "_3.json", "{}");
    EXPECT_EQ(unique_output_stem(dir, stem, {".mp4", ".png", ".json"}), stem + "_4");

    // The low-level writers refuse to overwrite.
    std::string msg = error_of([&] { write_mp4(a.video_path, {rgb.data(), F, H, W}); });
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    msg = error_of([&] { write_png(a.poster_path, rgb.data(), H, W); });
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    msg = error_of([&] { write_text_file(a.json_path, "x"); });
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    EXPECT_EQ(file_bytes(a.video_path), first_video);
}

TEST(Video, ConcurrentSavesOfTheSameNameBothSucceed) {
    // Same prompt, same second, same folder, at the same time: each save claims its own stem.
    const int F = 5, H = 32, W = 32;
    const auto rgb = gradient(F, H, W);
    const std::string dir = wan::test::make_temp_dir("video_race");
    SaveOptions so;
    so.dir = dir;
    so.prompt = "two at once";
    so.when = 1700000000;
    std::vector<SavedOutputs> results(4);
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            try {
                results[i] = save_outputs(so, {rgb.data(), F, H, W});
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    }
    for (auto& t : threads) t.join();
    std::set<std::string> paths;
    for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(errors[i].empty()) << errors[i];
        paths.insert(results[i].video_path);
    }
    EXPECT_EQ(paths.size(), 4u);
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(entry.path().string().find(".reserved"), std::string::npos) << "marker left: " << entry.path();
}

TEST(Video, OutputDirChecks) {
    const std::string dir = wan::test::make_temp_dir("video_dir");
    EXPECT_NO_THROW(check_output_dir(dir));
    EXPECT_NO_THROW(check_output_dir(dir + "/new/nested"));
    EXPECT_TRUE(fs::is_directory(dir + "/new/nested"));
    EXPECT_TRUE(list_dir(dir + "/new/nested").empty());  // the probe file is gone

    std::string msg = error_of([&] { check_output_dir(dir + "/absent", /*create=*/false); });
    EXPECT_NE(msg.find("'" + dir + "/absent' does not exist"), std::string::npos) << msg;

    write_text_file(dir + "/file", "x");
    msg = error_of([&] { check_output_dir(dir + "/file"); });
    EXPECT_NE(msg.find("is not a directory"), std::string::npos) << msg;
    msg = error_of([&] { check_output_dir(dir + "/file/sub"); });
    EXPECT_NE(msg.find("cannot create output directory '" + dir + "/file/sub'"), std::string::npos) << msg;

    // /proc exists but nobody, root included, may create files in it.
    msg = error_of([] { check_output_dir("/proc", false); });
    EXPECT_NE(msg.find("output directory '/proc' is not writable"), std::string::npos) << msg;

    if (geteuid() != 0) {  // permission bits do not stop root
        const std::string ro = dir + "/readonly";
        fs::create_directory(ro);
        chmod(ro.c_str(), 0555);
        msg = error_of([&] { check_output_dir(ro); });
        EXPECT_NE(msg.find("is not writable: Permission denied"), std::string::npos) << msg;
        SaveOptions so;
        so.dir = ro;
        const auto rgb = gradient(1, 16, 16);
        msg = error_of([&] { save_outputs(so, {rgb.data(), 1, 16, 16}); });
        EXPECT_NE(msg.find("is not writable"), std::string::npos) << msg;
        chmod(ro.c_str(), 0755);
    }
}

TEST(Video, MetadataJson) {
    EXPECT_EQ(metadata_json({}), "{}\n");
    const std::string j = metadata_json({{"b", "quote \" and \\ backslash\nnewline"}, {"a", "1"}});
    EXPECT_LT(j.find("\"a\""), j.find("\"b\""));  // sorted keys
    EXPECT_NE(j.find("quote \\\" and \\\\ backslash\\nnewline"), std::string::npos) << j;
    EXPECT_NO_THROW(metadata_json({{"bad", "\xff\xfe"}}));  // invalid UTF-8 is replaced, not fatal
}

}  // namespace
