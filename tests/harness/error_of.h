// error_of(fn): runs `fn`, which must throw a wan::Error, and returns its message. When nothing is thrown the
// test fails here and the text returned, "<no wan::Error thrown>", contains no expected message.
#pragma once

#include "core/core.h"

#include <gtest/gtest.h>

#include <string>

namespace wan::test {

template <typename F>
std::string error_of(F&& fn) {
    try {
        fn();
    } catch (const wan::Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a wan::Error";
    return "<no wan::Error thrown>";
}

}  // namespace wan::test
