# Generates the wanstudio(1) man page from `wanstudio --help` and `--version` (help2man's job, without the
# extra build dependency). Run at build time by packaging/CMakeLists.txt:
#   cmake -DWANSTUDIO=<exe> -DOUTPUT=<dir>/wanstudio.1 [-DGZIP=<gzip>] -P manpage.cmake
# writes OUTPUT and, with GZIP, OUTPUT.gz (gzip -9n, as Debian policy wants man pages).
#
# The help text (app/cli/options.cpp helpText()) has this shape, which is all this parser relies on:
#   line 1            "wanstudio — <one-line description>"
#   "Usage:"          followed by indented command lines ("  wanstudio …   what it does")
#   plain paragraphs  (not indented)
#   "Heading:"        a non-indented line ending in ':' (a heading may wrap onto a second such line)
#   option lines      "  --name [ARG]   description" (description column may follow a single space)
cmake_minimum_required(VERSION 3.25)

foreach(v WANSTUDIO OUTPUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "manpage.cmake: -D${v}=... is required")
  endif()
endforeach()

# Quiet, single process: no mpirun. OMPI_MCA_* keeps OpenMPI's singleton start from probing the network.
set(ENV{OMPI_MCA_btl} "self")
execute_process(COMMAND "${WANSTUDIO}" --help OUTPUT_VARIABLE help_text ERROR_VARIABLE help_err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR help_text STREQUAL "")
  message(FATAL_ERROR "manpage.cmake: '${WANSTUDIO} --help' failed (exit ${rc}): ${help_err}")
endif()
execute_process(COMMAND "${WANSTUDIO}" --version OUTPUT_VARIABLE version_text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "manpage.cmake: '${WANSTUDIO} --version' failed (exit ${rc})")
endif()
string(REGEX MATCH "^wanstudio ([^\n]+)" _ "${version_text}")
set(version "${CMAKE_MATCH_1}")

# roff escaping of free text: backslashes first, then '-' as \- (so options copy-paste as ASCII hyphens),
# and a leading '.' or '\'' must not start a request.
function(roff_escape out text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  if(text MATCHES "^[.']")
    set(text "\\&${text}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# Moves the text before the first `sep` of the variable named `rest_var` into `out`; `rest_var` keeps what
# follows that separator, or becomes empty where there is none. (string(FIND), not a CMake list: the help text
# holds '[', ']' and ';'.)
function(pop_until sep out rest_var)
  string(FIND "${${rest_var}}" "${sep}" at)
  if(at EQUAL -1)
    set(${out} "${${rest_var}}" PARENT_SCOPE)
    set(${rest_var} "" PARENT_SCOPE)
  else()
    string(SUBSTRING "${${rest_var}}" 0 ${at} head)
    string(LENGTH "${sep}" sep_len)
    math(EXPR at "${at} + ${sep_len}")
    string(SUBSTRING "${${rest_var}}" ${at} -1 tail)
    set(${out} "${head}" PARENT_SCOPE)
    set(${rest_var} "${tail}" PARENT_SCOPE)
  endif()
endfunction()

# Splits an indented help line into the term and its description: at the first run of >= 2 spaces, else
# after "--name" plus one argument token (upper-case like DIR, W*H, or a|b|c choices).
function(split_term out_term out_desc line)
  string(STRIP "${line}" line)
  if(line MATCHES "^--[^ ]+( [^ ]+)?$")
    set(term "${line}")  # "--sample-solver unipc|dpm++": an option and its choices, no description
    set(desc "")
  elseif(line MATCHES "^([^ ]+( [^ ]+)*)  +(.*)$")
    set(term "${CMAKE_MATCH_1}")
    set(desc "${CMAKE_MATCH_3}")
  elseif(NOT line MATCHES ", --" AND line MATCHES "^(--[A-Za-z0-9_-]+( [A-Z][A-Z0-9_*|]*| [a-z0-9+]+(\\|[a-z0-9+]+)+)?) (.+)$")
    set(term "${CMAKE_MATCH_1}")
    set(desc "${CMAKE_MATCH_4}")
  else()
    set(term "${line}")
    set(desc "")
  endif()
  string(REGEX REPLACE "  +" " " desc "${desc}")
  set(${out_term} "${term}" PARENT_SCOPE)
  set(${out_desc} "${desc}" PARENT_SCOPE)
endfunction()

# Bold option names, italic arguments: "--size W*H" -> \fB\-\-size\fR \fIW*H\fR. Word by word with pop_until
# (a CMake list would mis-split on the brackets of "[--ckpt-dir DIR]").
function(format_term out term)
  set(result "")
  set(rest "${term}")
  while(NOT rest STREQUAL "")
    pop_until(" " word rest)
    if(word STREQUAL "")
      continue()
    endif()
    roff_escape(e "${word}")
    if(NOT result STREQUAL "")
      string(APPEND result " ")
    endif()
    if(word MATCHES "^\\[?--" OR word MATCHES "^(wanstudio|mpirun|-np)$")
      string(APPEND result "\\fB${e}\\fR")
    else()
      string(APPEND result "\\fI${e}\\fR")
    endif()
  endwhile()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

string(TIMESTAMP date "%Y-%m-%d" UTC)  # honours SOURCE_DATE_EPOCH for reproducible packages

set(roff "")
string(APPEND roff ".\\\" Generated from 'wanstudio --help' by packaging/manpage.cmake; do not edit.\n")
string(APPEND roff ".TH WANSTUDIO 1 \"${date}\" \"wanstudio ${version}\" \"User Commands\"\n")

function(emit_heading)
  if(heading STREQUAL "")
    return()
  endif()
  # "Name (a long remark)" -> subsection "Name" with the remark as its first paragraph.
  string(LENGTH "${heading}" hl)
  if(hl GREATER 40 AND heading MATCHES "^([^(]+) \\((.*)\\)$")
    string(STRIP "${CMAKE_MATCH_1}" h1)
    roff_escape(h1e "${h1}")
    roff_escape(h2e "${CMAKE_MATCH_2}")
    string(APPEND roff ".SS ${h1e}\n${h2e}.\n")
  else()
    roff_escape(he "${heading}")
    string(APPEND roff ".SS ${he}\n")
  endif()
  set(roff "${roff}" PARENT_SCOPE)
  set(heading "" PARENT_SCOPE)
endfunction()

# Line by line with pop_until.
set(state "start")      # start | intro | usage | para | between | heading | options
set(heading "")
set(options_started FALSE)
set(description_started FALSE)
set(rest "${help_text}")
while(NOT rest STREQUAL "")
  pop_until("\n" line rest)

  if(state STREQUAL "start")
    # "wanstudio — description" (an em dash or a plain hyphen)
    string(REGEX REPLACE "^wanstudio +(—|-+) +" "" name_line "${line}")
    roff_escape(name_esc "${name_line}")
    string(APPEND roff ".SH NAME\nwanstudio \\- ${name_esc}\n")
    set(state "intro")
    continue()
  endif()
  if(line STREQUAL "")
    if(state STREQUAL "para")
      set(state "between")
    endif()
    continue()
  endif()
  if(line STREQUAL "Usage:")
    string(APPEND roff ".SH SYNOPSIS\n")
    set(state "usage")
    continue()
  endif()
  if(NOT line MATCHES "^ ")
    # Once the first "Heading:" is seen, every non-indented line is (part of) a heading, which may wrap.
    if(options_started OR line MATCHES ":$")
      if(NOT options_started)
        string(APPEND roff ".SH OPTIONS\n")
        set(options_started TRUE)
      endif()
      string(REGEX REPLACE ":$" "" h "${line}")
      if(state STREQUAL "heading")
        set(heading "${heading} ${h}")
      else()
        set(heading "${h}")
      endif()
      set(state "heading")
      continue()
    endif()
    # A plain paragraph before the options: the description.
    if(NOT description_started)
      string(APPEND roff ".SH DESCRIPTION\n")
      string(APPEND roff "WanStudio generates videos from text prompts with the Wan2.1 text\\-to\\-video models. "
                         "Without \\fB\\-\\-prompt\\fR or \\fB\\-\\-batch\\fR it opens the desktop window; under "
                         "\\fBmpirun\\fR every rank runs this same program, rank 0 shows the window (or runs the "
                         "headless jobs) and the other ranks serve it.\n.PP\n")
      set(description_started TRUE)
    elseif(state STREQUAL "between")
      string(APPEND roff ".PP\n")
    endif()
    roff_escape(e "${line}")
    string(APPEND roff "${e}\n")
    set(state "para")
    continue()
  endif()
  # An indented line: a synopsis entry or an option.
  if(state STREQUAL "heading")
    emit_heading()
    set(state "options")
  endif()
  if(state STREQUAL "options" AND line MATCHES "^          +[^ ]")
    # A wrapped description (indented to the description column) continues the previous option's.
    string(STRIP "${line}" cont)
    roff_escape(cont_roff "${cont}")
    string(APPEND roff "${cont_roff}\n")
    continue()
  endif()
  split_term(term desc "${line}")
  format_term(term_roff "${term}")
  string(APPEND roff ".TP\n${term_roff}\n")
  if(NOT desc STREQUAL "")
    roff_escape(desc_roff "${desc}")
    string(APPEND roff "${desc_roff}\n")
  endif()
endwhile()
emit_heading()

# Sections the help text does not carry.
string(APPEND roff [=[
.SH EXAMPLES
.TP
\fBwanstudio \-\-prompt "a red fox running through fresh snow"\fR
Headless run on the built\-in tiny demo checkpoint (random weights: the video is noise\-like).
.TP
\fBwanstudio \-\-ckpt\-dir ./Wan2.1\-T2V\-1.3B \-\-size 832*480 \-\-sample\-shift 8 \-\-sample\-guide\-scale 6\fR
The desktop window with the 1.3B model on one GPU.
.TP
\fBmpirun \-np 4 \-\-bind\-to none wanstudio \-\-check \-\-ckpt\-dir ./Wan2.1\-T2V\-14B \-\-ulysses\-size 4 \-\-dit\-fsdp \-\-t5\-fsdp\fR
Checks the 4\-process setup (devices, checkpoint, layout, a collective, the model build) and exits;
run the same line without \fB\-\-check\fR to start the window on rank 0.
.PP
The example launchers \fIrun_fsdp_example.sh\fR and \fIrun_sequence_parallel_example.sh\fR in
\fI/usr/share/wanstudio/examples\fR run the check and then the window with a valid layout.
.SH ENVIRONMENT
.TP
\fBWANSTUDIO_API_TOKEN\fR
The API token of \fB\-\-listen\fR and \fB\-\-connect\fR when \fB\-\-api\-token\fR is not given (it stays out of \fBps\fR).
.TP
\fBWAN_LOG\fR
Log level: \fBdebug\fR, \fBwarn\fR or \fBerror\fR (default info).
.TP
\fBWAN_DEMO_CKPT\fR
Directory used instead of the built\-in demo checkpoint when no \fB\-\-ckpt\-dir\fR is given.
.TP
\fBDASH_API_KEY\fR, \fBDASH_API_URL\fR
DashScope credentials and endpoint for \fB\-\-prompt\-extend\-method dashscope\fR.
.TP
\fBNCCL_DEBUG\fR, \fBNCCL_P2P_DISABLE\fR, \fBNCCL_NVLS_ENABLE\fR
Read by NCCL in multi\-GPU runs (see the README's troubleshooting section).
.SH FILES
.TP
\fI<prefix>/share/wanstudio/demo\-ckpt\fR
The built\-in tiny demo checkpoint (found relative to the executable).
.SH SEE ALSO
\fBmpirun\fR(1)
]=])

file(WRITE "${OUTPUT}" "${roff}")
if(DEFINED GZIP AND NOT GZIP STREQUAL "")
  execute_process(COMMAND "${GZIP}" -9 -n -c "${OUTPUT}" OUTPUT_FILE "${OUTPUT}.gz" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "manpage.cmake: gzip of ${OUTPUT} failed (exit ${rc})")
  endif()
endif()
