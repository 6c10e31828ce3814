#include "remote/listen_entry.h"

#include "remote/api_server.h"
#include "remote/remote_backend.h"
#include "session/engine_session.h"
#include "stop_signals.h"

#include <QCoreApplication>
#include <QDir>

#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace wan::app {

namespace {
std::string apiToken(const AppOptions& options) {
    if (!options.apiToken.empty()) return options.apiToken;
    const char* env = std::getenv("WANSTUDIO_API_TOKEN");
    return env ? env : "";
}

/// The API configuration from the options; throws wan::Error for a bad address or a missing token.
ApiConfig apiConfig(const AppOptions& options) {
    ApiConfig config;
    config.listen = parseListenAddress(options.listenAddress);
    const std::string token = apiToken(options);
    WAN_CHECK(!token.empty() || config.listen.isLoopback(),
              "--listen %s is not a loopback address: set --api-token TOKEN (or WANSTUDIO_API_TOKEN) so that only "
              "clients with the token are served, or listen on 127.0.0.1 and connect through an SSH tunnel",
              options.listenAddress.c_str());
    config.token = QByteArray::fromStdString(token);
    config.outputDir = QDir(QString::fromStdString(options.engine.output_dir)).absolutePath();
    config.defaults = options.request;
    config.promptExtendMethod = QString::fromStdString(options.engine.prompt_extend_method);
    if (options.apiRequestTimeoutS > 0) {  // checked by the option parser
        config.requestTimeoutMs = static_cast<int>(options.apiRequestTimeoutS * 1000);
    } else if (const char* timeout = std::getenv("WANSTUDIO_API_REQUEST_TIMEOUT_S"); timeout && *timeout) {
        char* end = nullptr;
        const double seconds = std::strtod(timeout, &end);
        WAN_CHECK(end && *end == 0 && seconds >= 0.1 && seconds <= 3600, "WANSTUDIO_API_REQUEST_TIMEOUT_S='%s': "
                  "expected seconds between 0.1 and 3600 (or use --api-request-timeout SECONDS)", timeout);
        config.requestTimeoutMs = static_cast<int>(seconds * 1000);
    }
    return config;
}
}  // namespace

int runListen(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend) {
    QCoreApplication app(argc, argv);
    QCoreApplication::setOrganizationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationVersion(QString::fromUtf8(wan::version_string()));
    ApiConfig config;
    try {
        config = apiConfig(options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        backend->shutdown();  // never started: releases the engine ranks
        return 2;
    }
    EngineSession session(std::move(backend));  // its destructor shuts the backend down on every path
    ApiServer server(&session, config);
    QString error;
    if (!server.start(&error)) {
        std::fprintf(stderr, "error: --listen %s\n", error.toStdString().c_str());
        return 2;
    }
    // The first stdout line says where to connect (tests read the port from it when --listen asked for 0).
    // Its pid is the head rank's: SIGTERM there stops every rank cleanly (mpirun's own SIGTERM kills them).
    std::printf("wanstudio: listening on http://%s:%u (pid %lld, output folder %s)%s\n",
                config.listen.address.toString().toStdString().c_str(), server.port(),
                static_cast<long long>(QCoreApplication::applicationPid()), config.outputDir.toStdString().c_str(),
                config.token.isEmpty() ? "" : ", API token required");
    std::fflush(stdout);
    QObject::connect(&session, &EngineSession::started, &app, [](const wan::EngineInfo& info) {
        std::printf("wanstudio: engine ready (%s, %d rank(s))\n", info.model_variant.c_str(), info.world_size);
        std::fflush(stdout);
    });
    QObject::connect(&session, &EngineSession::startFailed, &app, [](const QString& message) {
        std::fprintf(stderr, "error: the engine failed to start: %s (the API stays up and reports it)\n",
                     message.toStdString().c_str());
    });

    {
        StopSignals stop({SIGINT, SIGTERM}, StopSignals::Second::Caught, &app, [&app] { app.quit(); });
        session.start();
        app.exec();
    }
    std::fprintf(stderr, "wanstudio: stopping the server (queued and running jobs are cancelled)\n");
    session.shutdown();
    session.waitForStopped();
    return 0;
}

RemoteEndpoint connectEndpoint(const AppOptions& options) {
    RemoteEndpoint endpoint = parseRemoteEndpoint(options.connectAddress);
    endpoint.token = QByteArray::fromStdString(apiToken(options));
    return endpoint;
}

}  // namespace wan::app
