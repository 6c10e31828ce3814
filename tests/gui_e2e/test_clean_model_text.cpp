// wan::extend::clean_model_text: what an extended prompt becomes before it reaches the prompt box, the JSON
// sidecar and the MP4 tags (C strings, so a NUL would cut the tag short: found by gui_e2e_headless_prompt_extend
// with the tiny random Qwen model).
#include "extend/extend.h"

#include <gtest/gtest.h>

using wan::extend::clean_model_text;

TEST(CleanModelText, KeepsOrdinaryTextAndTrims) {
    EXPECT_EQ(clean_model_text("  A cat on a mat.\n"), "A cat on a mat.");
    EXPECT_EQ(clean_model_text("一只小猫在草地上奔跑 🐱"), "一只小猫在草地上奔跑 🐱");
    EXPECT_EQ(clean_model_text("line one\n\tline two"), "line one\n\tline two");
    EXPECT_EQ(clean_model_text(" \n\t "), "");
}

TEST(CleanModelText, DropsControlCharacters) {
    EXPECT_EQ(clean_model_text(std::string("a\0b", 3)), "ab");
    EXPECT_EQ(clean_model_text("a\x01\x1b[0m\x7f" "b"), "a[0mb");
    EXPECT_EQ(clean_model_text("a\r\nb\rc"), "a\nb\nc");
    EXPECT_EQ(clean_model_text("a\xC2\x85" "b"), "ab");  // U+0085 (C1 control)
    EXPECT_EQ(clean_model_text("caf\xC3\xA9"), "caf\xC3\xA9");  // é stays
}

TEST(CleanModelText, ReplacesInvalidUtf8) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(clean_model_text("a\xFF" "b"), "a" + fffd + "b");
    EXPECT_EQ(clean_model_text("a\xE4\xB8" "b"), "a" + fffd + "b");     // truncated 3-byte sequence: one U+FFFD
    EXPECT_EQ(clean_model_text("a\xC0\xAF" "b"), "a" + fffd + fffd + "b");  // overlong: each byte
    EXPECT_EQ(clean_model_text("a\xED\xA0\x80" "b"), "a" + fffd + fffd + fffd + "b");  // surrogate
    EXPECT_EQ(clean_model_text("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
    EXPECT_EQ(clean_model_text("\xE4\xB8"), fffd);  // at the end
}
