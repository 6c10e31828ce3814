// DashScope back end against a scripted HTTP server in the test (127.0.0.1, ephemeral port, one thread,
// a few requests, a few seconds at most). Nothing here touches the internet.
#include "extend/extend.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace {

using namespace wan::extend;
using Clock = std::chrono::steady_clock;

struct Scripted {
    int status = 200;
    std::string body;
    int delay_ms = 0;  ///< wait before answering (the timeout test)
};

struct Recorded {
    std::string request_line;
    std::string headers;  ///< raw header block
    std::string body;
};

/// Serves `script` in order, one connection per entry ("Connection: close"), then stops. Gives up after
/// `deadline_ms` in all, so that a broken client can never hang the test.
class ScriptedServer {
public:
    explicit ScriptedServer(std::vector<Scripted> script, int deadline_ms = 8000)
        : script_(std::move(script)), deadline_(Clock::now() + std::chrono::milliseconds(deadline_ms)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        EXPECT_GE(fd_, 0);
        const int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd_, 8), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~ScriptedServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        ::close(fd_);
    }
    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1"; }
    std::vector<Recorded> requests() {
        std::lock_guard<std::mutex> lock(mu_);
        return seen_;
    }

private:
    bool expired() const { return stop_ || Clock::now() > deadline_; }

    /// Waits for `fd` to be readable in short slices; false on stop or deadline.
    bool wait_readable(int fd) const {
        while (!expired()) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) return true;
        }
        return false;
    }

    void run() {
        for (const Scripted& s : script_) {
            if (!wait_readable(fd_)) return;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            Recorded r;
            if (read_request(c, r)) {
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    seen_.push_back(r);
                }
                const auto until = Clock::now() + std::chrono::milliseconds(s.delay_ms);
                while (!expired() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                const std::string reply = "HTTP/1.1 " + std::to_string(s.status) + " Scripted\r\n" +
                                          "Content-Type: application/json\r\nContent-Length: " +
                                          std::to_string(s.body.size()) + "\r\nConnection: close\r\n\r\n" + s.body;
                ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
            }
            ::close(c);
        }
    }

    bool read_request(int c, Recorded& r) const {
        std::string buf;
        char tmp[4096];
        size_t header_end = std::string::npos;
        size_t content_length = 0;
        while (true) {
            if (header_end != std::string::npos && buf.size() >= header_end + 4 + content_length) break;
            if (!wait_readable(c)) return false;
            const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf.append(tmp, static_cast<size_t>(n));
            if (header_end == std::string::npos && (header_end = buf.find("\r\n\r\n")) != std::string::npos) {
                std::string lower = buf.substr(0, header_end);
                for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                const size_t p = lower.find("content-length:");
                if (p != std::string::npos) content_length = std::stoul(lower.substr(p + 15));
            }
        }
        const size_t eol = buf.find("\r\n");
        r.request_line = buf.substr(0, eol);
        r.headers = buf.substr(eol + 2, header_end - eol - 2);
        r.body = buf.substr(header_end + 4, content_length);
        return true;
    }

    std::vector<Scripted> script_;
    Clock::time_point deadline_;
    int fd_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<Recorded> seen_;
};

const char* kOkBody =
    R"({"status_code":200,"request_id":"r-1","output":{"choices":[{"finish_reason":"stop","message":)"
    R"({"role":"assistant","content":"Two cats box under a spotlight. 两只猫。"}}]},"usage":{"input_tokens":9}})";

/// A failed extension: the original prompt ("a cat") kept, and each of `parts` in the message.
void expect_failure(const ExtendResult& r, std::initializer_list<const char*> parts) {
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.prompt, "a cat");
    for (const char* part : parts) EXPECT_NE(r.message.find(part), std::string::npos) << r.message;
}

/// What an extension cancelled part-way through gave, and how long it took.
struct CancelledExtension {
    ExtendResult result;
    double seconds = 0;
};

/// Extends "a cat" with `options` against `server`, and sets the cancel flag `after` the server has received the
/// first request.
CancelledExtension extend_and_cancel(ScriptedServer& server, const ExtendOptions& options,
                                     std::chrono::milliseconds after) {
    auto ext = make_prompt_extender("dashscope", "", options);
    std::atomic<bool> cancel{false};
    ext->set_cancel_flag(&cancel);
    std::thread canceller([&] {
        while (server.requests().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::this_thread::sleep_for(after);
        cancel.store(true);
    });
    const auto t0 = Clock::now();
    CancelledExtension out{ext->extend("a cat", "en", 5)};
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    canceller.join();
    return out;
}

class DashScope : public ::testing::Test {
protected:
    void SetUp() override {
        // The test's server is local: keep any proxy of the environment out, and the real key unused.
        for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                              "DASH_API_KEY", "DASH_API_URL"})
            ::unsetenv(v);
        ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    }
    ExtendOptions fast(const ScriptedServer& s) const {
        ExtendOptions o;
        o.api_key = "test-key";
        o.base_url = s.url();
        o.connect_timeout_ms = 1000;
        o.timeout_ms = 2000;
        o.retry_backoff_ms = 10;
        return o;
    }
};

TEST_F(DashScope, SuccessSendsUpstreamsRequest) {
    ScriptedServer server({{200, kOkBody}});
    auto ext = make_prompt_extender("dashscope", "", fast(server));
    const ExtendResult r = ext->extend("Two cats boxing.", "en", 42);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.prompt, "Two cats box under a spotlight. 两只猫。");
    EXPECT_EQ(r.seed, 42);
    EXPECT_EQ(r.system_prompt, kLmEnSysPrompt);
    EXPECT_EQ(nlohmann::json::parse(r.message), nlohmann::json::parse(kOkBody));  // the whole response

    const auto req = server.requests();
    ASSERT_EQ(req.size(), 1u);
    EXPECT_EQ(req[0].request_line, "POST /api/v1/services/aigc/text-generation/generation HTTP/1.1");
    EXPECT_NE(req[0].headers.find("Authorization: Bearer test-key\r\n"), std::string::npos) << req[0].headers;
    EXPECT_NE(req[0].headers.find("Content-Type: application/json"), std::string::npos) << req[0].headers;
    const nlohmann::json body = nlohmann::json::parse(req[0].body);
    EXPECT_EQ(body["model"], "qwen-plus");
    ASSERT_EQ(body["input"]["messages"].size(), 2u);
    EXPECT_EQ(body["input"]["messages"][0]["role"], "system");
    EXPECT_EQ(body["input"]["messages"][0]["content"], kLmEnSysPrompt);
    EXPECT_EQ(body["input"]["messages"][1]["role"], "user");
    EXPECT_EQ(body["input"]["messages"][1]["content"], "Two cats boxing.");
    EXPECT_EQ(body["parameters"]["seed"], 42);
    EXPECT_EQ(body["parameters"]["result_format"], "message");
}

TEST(DashScopeUrl, OnlyHttpsOrLoopbackMayCarryTheKey) {
    for (const char* ok : {"https://dashscope.aliyuncs.com/api/v1", "HTTPS://example.com", "http://127.0.0.1:8080/api/v1",
                           "http://127.4.5.6/x", "http://localhost:99", "http://LOCALHOST/", "http://[::1]:8080/api",
                           "http://user@127.0.0.1:1/"})
        EXPECT_EQ(dashscope_url_refusal(ok, "DASH_API_URL"), "") << ok;
    for (const char* bad : {"http://dashscope.aliyuncs.com/api/v1", "http://127.0.0.1.example.com/", "http://10.0.0.1/",
                            "http://127.0.0.1@example.com/", "http://localhost.example.com/", "http://[::2]/",
                            "http://128.0.0.1/"}) {
        const std::string m = dashscope_url_refusal(bad, "DASH_API_URL");
        EXPECT_NE(m.find("plain http"), std::string::npos) << bad << ": " << m;
        EXPECT_NE(m.find("DASH_API_URL"), std::string::npos) << m;
        EXPECT_NE(m.find(bad), std::string::npos) << m;
    }
    for (const char* bad : {"ftp://example.com/", "dashscope.aliyuncs.com/api/v1", ""})
        EXPECT_NE(dashscope_url_refusal(bad, "DASH_API_URL").find("is not an https:// URL"), std::string::npos) << bad;
}

TEST_F(DashScope, PlainHttpToAnotherHostIsRefusedBeforeAnyConnection) {
    // The host does not exist (.invalid): had a request been tried, the message would be curl's resolve error.
    ::setenv("DASH_API_KEY", "env-key", 1);
    ::setenv("DASH_API_URL", "http://dashscope.example.invalid/api/v1", 1);
    ExtendOptions o;
    o.connect_timeout_ms = 1000;
    o.timeout_ms = 1000;
    auto ext = make_prompt_extender("dashscope", "", o);
    const ExtendResult r = ext->extend("Two cats boxing.", "en", 1);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.prompt, "Two cats boxing.");  // the original prompt is kept
    EXPECT_NE(r.message.find("refusing to send the API key in clear over plain http"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("(DASH_API_URL)"), std::string::npos) << r.message;
}

TEST_F(DashScope, KeyAndUrlFromTheEnvironmentAndRandomSeed) {
    ScriptedServer server({{200, kOkBody}});
    ::setenv("DASH_API_KEY", "env-key", 1);
    ::setenv("DASH_API_URL", (server.url() + "/").c_str(), 1);  // a trailing slash is tolerated
    ExtendOptions o;
    o.timeout_ms = 2000;
    auto ext = make_prompt_extender("dashscope", "qwen-max", o);
    EXPECT_EQ(ext->model(), "qwen-max");
    const ExtendResult r = ext->extend("两只猫在打拳击", "zh", -1);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_GE(r.seed, 0);
    EXPECT_EQ(r.system_prompt, kLmZhSysPrompt);
    const auto req = server.requests();
    ASSERT_EQ(req.size(), 1u);
    EXPECT_EQ(req[0].request_line, "POST /api/v1/services/aigc/text-generation/generation HTTP/1.1");
    EXPECT_NE(req[0].headers.find("Authorization: Bearer env-key\r\n"), std::string::npos);
    const nlohmann::json body = nlohmann::json::parse(req[0].body);
    EXPECT_EQ(body["model"], "qwen-max");
    EXPECT_EQ(body["parameters"]["seed"].get<int64_t>(), r.seed);
    EXPECT_EQ(body["input"]["messages"][0]["content"], kLmZhSysPrompt);
    EXPECT_EQ(body["input"]["messages"][1]["content"], "两只猫在打拳击");
}

TEST_F(DashScope, NoKeyIsReportedWithoutARequest) {
    ScriptedServer server({}, 200);
    ExtendOptions o = fast(server);
    o.api_key.clear();
    const ExtendResult r = make_prompt_extender("dashscope", "", o)->extend("a cat", "zh", 1);
    expect_failure(r, {"DASH_API_KEY"});
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(DashScope, BadKeyIsNotRetried) {
    ScriptedServer server({{401, R"({"code":"InvalidApiKey","message":"Invalid API-key provided."})"},
                           {200, kOkBody}});
    const ExtendResult r = make_prompt_extender("dashscope", "", fast(server))->extend("a cat", "en", 1);
    expect_failure(r, {"API key was rejected", "401", "InvalidApiKey"});
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(DashScope, ServerErrorThenSuccessIsRetried) {
    ScriptedServer server({{500, R"({"code":"InternalError","message":"busy"})"}, {200, kOkBody}});
    const ExtendResult r = make_prompt_extender("dashscope", "", fast(server))->extend("a cat", "en", 5);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.prompt, "Two cats box under a spotlight. 两只猫。");
    const auto req = server.requests();
    ASSERT_EQ(req.size(), 2u);
    EXPECT_EQ(req[0].body, req[1].body);  // the same request again, same seed
}

TEST_F(DashScope, RateLimitGivesUpAfterMaxTries) {
    const std::string limited = R"({"code":"Throttling.RateQuota","message":"Requests rate limit exceeded"})";
    ScriptedServer server({{429, limited}, {429, limited}, {429, limited}, {200, kOkBody}});
    ExtendOptions o = fast(server);
    o.max_tries = 3;
    const ExtendResult r = make_prompt_extender("dashscope", "", o)->extend("a cat", "en", 5);
    expect_failure(r, {"quota", "429", "gave up after 3 tries"});
    EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(DashScope, QuotaCodeInTheBody) {
    ScriptedServer server({{400, R"({"code":"Arrearage","message":"Access denied, account in arrears."})"}});
    const ExtendResult r = make_prompt_extender("dashscope", "", fast(server))->extend("a cat", "en", 5);
    expect_failure(r, {"quota", "Arrearage"});
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(DashScope, TimeoutIsBoundedAndReported) {
    ScriptedServer server({{200, kOkBody, 3000}, {200, kOkBody, 3000}});
    ExtendOptions o = fast(server);
    o.timeout_ms = 300;
    o.max_tries = 2;
    const auto t0 = Clock::now();
    const ExtendResult r = make_prompt_extender("dashscope", "", o)->extend("a cat", "en", 5);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    expect_failure(r, {"timed out", "gave up after 2 tries"});
    EXPECT_LT(secs, 2.5);
}

TEST_F(DashScope, OversizedAnswerIsRefusedAndNotRetried) {
    const std::string huge = R"({"output":{"choices":[{"message":{"content":")" + std::string(200000, 'x') + R"("}}]}})";
    ScriptedServer server({{200, huge}, {200, kOkBody}});
    ExtendOptions o = fast(server);
    o.max_response_bytes = 64 * 1024;
    const ExtendResult r = make_prompt_extender("dashscope", "", o)->extend("a cat", "en", 5);
    expect_failure(r, {"larger than 65536 bytes", "refused"});
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(DashScope, CancelStopsARequestInFlight) {
    ScriptedServer server({{200, kOkBody, 3000}, {200, kOkBody, 3000}});
    ExtendOptions o = fast(server);
    o.timeout_ms = 10000;  // only the cancel can end it early
    // cancelled at once: the request is being answered (slowly) then
    const CancelledExtension c = extend_and_cancel(server, o, std::chrono::milliseconds(0));
    expect_failure(c.result, {"cancelled"});
    EXPECT_LT(c.seconds, 2.5) << "the cancel waited for the server's answer (3 s)";
    EXPECT_EQ(server.requests().size(), 1u);  // not retried
}

TEST_F(DashScope, CancelDuringTheBackOffEndsAtOnce) {
    ScriptedServer server({{500, R"({"code":"InternalError","message":"busy"})"}, {200, kOkBody}});
    ExtendOptions o = fast(server);
    o.retry_backoff_ms = 5000;
    // cancelled 100 ms after the 500 was answered: in the back-off
    const CancelledExtension c = extend_and_cancel(server, o, std::chrono::milliseconds(100));
    expect_failure(c.result, {"cancelled"});
    EXPECT_LT(c.seconds, 2.5) << "the cancel waited for the 5 s back-off";
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(DashScope, GarbageBodyIsAMalformedAnswer) {
    ScriptedServer server({{200, "<html>gateway says hello</html>"}, {200, kOkBody}});
    const ExtendResult r = make_prompt_extender("dashscope", "", fast(server))->extend("a cat", "en", 5);
    expect_failure(r, {"malformed answer", "gateway says hello"});
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(DashScope, JsonWithoutContentIsAMalformedAnswer) {
    ScriptedServer server({{200, R"({"output":{"choices":[]},"request_id":"r-2"})"}});
    const ExtendResult r = make_prompt_extender("dashscope", "", fast(server))->extend("a cat", "en", 5);
    expect_failure(r, {"output.choices[0].message.content"});
}

TEST_F(DashScope, NetworkDownIsRetriedThenReported) {
    // A port that was just free: nothing listens there.
    int port = 0;
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        ::close(fd);
    }
    ExtendOptions o;
    o.api_key = "k";
    o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/api/v1";
    o.connect_timeout_ms = 500;
    o.timeout_ms = 1000;
    o.max_tries = 2;
    o.retry_backoff_ms = 10;
    const ExtendResult r = make_prompt_extender("dashscope", "", o)->extend("a cat", "zh", 5);
    expect_failure(r, {"cannot reach", "gave up after 2 tries"});
}

}  // namespace
