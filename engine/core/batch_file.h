// The batch-file format of `--batch FILE` (headless and GUI runs alike). Torch-free.
//
//   a cat surfing a wave                                  <- a plain line is one prompt
//   {"prompt": "an owl", "size": "480*832", "base_seed": 42}   <- a JSON line: per-job options
//   # a comment; blank lines are skipped too
//
// A JSON line's keys are GenerationRequest JSON keys (plus "size": "W*H"); they apply over the defaults
// (the command line's settings), which supply every field a line leaves out. A UTF-8 byte-order mark at the
// start is ignored, lines may end in CRLF, and spaces around a line are trimmed.
#pragma once

#include "core/core.h"

#include <string>
#include <vector>

namespace wan {

/// Parses batch text. Throws wan::Error naming `source` and the 1-based line number for malformed JSON,
/// unknown keys (named), wrong types, empty prompts and invalid values (GenerationRequest::validate).
std::vector<GenerationRequest> parse_batch_text(const std::string& text, const GenerationRequest& defaults,
                                                const std::string& source = "batch file");

/// Reads and parses a batch file (errors name it as "--batch <path>"); also throws when it cannot be read or
/// holds no prompt.
std::vector<GenerationRequest> read_batch_file(const std::string& path, const GenerationRequest& defaults);

}  // namespace wan
