#include "gui_entry.h"

#include "core/batch_file.h"
#include "batch/batch_runner.h"
#include "session/engine_link.h"
#include "session/engine_session.h"
#include "settings/settings.h"
#include "stop_signals.h"
#include "ui/icons.h"
#include "ui/main_window.h"
#include "ui/parameters_panel.h"

#include <QApplication>
#include <QCoreApplication>
#include <QIcon>
#include <QPixmap>
#include <QPlainTextEdit>
#include <QScreen>
#include <QPointer>
#include <QTimer>

#include <csignal>
#include <cstdio>
#include <memory>

namespace wan::app {

namespace {
void setApplicationNames() {
    QCoreApplication::setOrganizationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationVersion(QString::fromUtf8(wan::version_string()));
}

char levelLetter(wan::LogLevel level) {
    switch (level) {
        case wan::LogLevel::Debug: return 'D';
        case wan::LogLevel::Info: return 'I';
        case wan::LogLevel::Warn: return 'W';
        case wan::LogLevel::Error: return 'E';
    }
    return '?';
}

/// Screenshot hook, for the picture in docs/ (docs/screenshot.md says how it is made); does nothing unless
/// WAN_SCREENSHOT=FILE is set. The window then generates one video with its parameters as soon as the engine
/// is ready (WAN_SCREENSHOT_PROMPT, when set, replaces the prompt), saves itself to FILE a second after the
/// preview has loaded (or failed to), and closes, which quits. A job that fails closes it without a picture.
/// WAN_SCREENSHOT_AT_STEP=N takes the picture mid-generation instead: once denoising step N's live preview
/// has reached the window (closing then cancels the job).
void installScreenshotHook(MainWindow* window, EngineSession* session) {
    const QString path = qEnvironmentVariable("WAN_SCREENSHOT");
    if (path.isEmpty()) return;
    const QString prompt = qEnvironmentVariable("WAN_SCREENSHOT_PROMPT");
    const auto single = static_cast<Qt::ConnectionType>(Qt::QueuedConnection | Qt::SingleShotConnection);
    QObject::connect(session, &EngineSession::started, window, [window, prompt] {  // after onStarted
        if (!prompt.isEmpty()) window->parametersPanel()->promptEdit()->setPlainText(prompt);
        if (window->generate() == 0) {
            std::fprintf(stderr, "WAN_SCREENSHOT: nothing to generate (no prompt?)\n");
            window->close();
        }
    }, single);
    // Mid-generation (WAN_SCREENSHOT_AT_STEP) the window closes once the job has ended too, so that closing
    // never has to ask about a running job; otherwise right after the picture.
    const int atStep = qEnvironmentVariableIntValue("WAN_SCREENSHOT_AT_STEP");
    struct State {
        bool taken = false, jobEnded = false, shotSaved = false;
    };
    auto state = std::make_shared<State>();
    auto closeWhenDone = [window, state, atStep] {
        if (state->shotSaved && (atStep <= 0 || state->jobEnded)) window->close();
    };
    auto shoot = [window, path, state, closeWhenDone] {
        QTimer::singleShot(1000, window, [window, path, state, closeWhenDone] {
            // The screen's pixels (the video frame is drawn by the video sink, not by QWidget::render),
            // or the widgets' own rendering where there is no screen to read (offscreen).
            QPixmap shot;
            if (QGuiApplication::platformName() != QLatin1String("offscreen") && window->screen())
                shot = window->screen()->grabWindow(window->winId());
            if (shot.isNull()) shot = window->grab();
            const bool saved = shot.save(path);
            std::fprintf(stderr, "WAN_SCREENSHOT: %s %s\n", saved ? "saved" : "could not save", qPrintable(path));
            state->shotSaved = true;
            closeWhenDone();
        });
    };
    if (atStep > 0) {
        QObject::connect(session, &EngineSession::progress, window,
                         [shoot, atStep, state](qint64, const wan::ProgressInfo& info) {
                             if (state->taken || info.stage != wan::Stage::Denoise || !info.preview || info.step < atStep)
                                 return;
                             state->taken = true;
                             shoot();
                         });
        QObject::connect(session, &EngineSession::finished, window, [state, closeWhenDone] {
            state->jobEnded = true;
            closeWhenDone();
        });
    } else {
        QObject::connect(window, &MainWindow::previewLoaded, window, shoot, single);
        QObject::connect(window, &MainWindow::previewFailed, window, shoot, single);
    }
    QObject::connect(session, &EngineSession::failed, window, [window](qint64, const QString& message) {
        std::fprintf(stderr, "WAN_SCREENSHOT: the job failed: %s\n", qPrintable(message));
        window->close();
    });
    QObject::connect(session, &EngineSession::startFailed, window, [window] { window->close(); });
}

/// Restores the default log sink however runGui returns.
struct LogSinkGuard {
    ~LogSinkGuard() { wan::set_log_sink(nullptr); }
};
}  // namespace

bool applySavedMemoryOptions(AppOptions& options, int world_size) {
    if (world_size != 1 || !options.connectAddress.empty() || !MemoryOptions::of(options.engine).isDefault()) return false;
    if (QCoreApplication::organizationName().isEmpty()) setApplicationNames();  // before the application exists
    const MemoryOptions saved = Settings().memoryOptions();
    if (saved.isDefault()) return false;
    saved.applyTo(options.engine);
    std::fprintf(stderr, "wanstudio: memory options from the settings (Engine → Memory…): %s\n", saved.summary().c_str());
    return true;
}

int runGui(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend,
           const SharedEngineFactory& connect) {
    QApplication app(argc, argv);
    setApplicationNames();
    QGuiApplication::setDesktopFileName(QStringLiteral("wanstudio"));
    QApplication::setWindowIcon(appIcon());
    registerMetaTypes();

    Settings settings;
    SharedEngineParts shared;
    if (connect) shared = connect(settings.remoteClientId());
    // Declared before the window: destroyed after it (so is the link).
    EngineSession session(connect ? std::move(shared.backend) : std::move(backend));
    const std::unique_ptr<EngineLink> link = std::move(shared.link);
    MainWindow window(&session, &settings, options);
    if (link) window.setEngineLink(link.get());

    // Engine log lines go to stderr as before and to the window's log dock (queued: any thread may log).
    LogSinkGuard guard;
    QPointer<MainWindow> target(&window);
    wan::set_log_sink([target](wan::LogLevel level, const std::string& message) {
        std::fprintf(stderr, "[r%d] %c %s\n", wan::log_rank(), levelLetter(level), message.c_str());
        if (target.isNull()) return;
        const QString line = QString::fromStdString(message);
        const int lvl = static_cast<int>(level);
        QMetaObject::invokeMethod(target.data(), [target, lvl, line] {
            if (!target.isNull()) target->appendLog(lvl, line);
        }, Qt::QueuedConnection);
    });

    window.show();
    installScreenshotHook(&window, &session);
    session.start();  // backend->start() on the engine thread; the window shows "Loading model…" meanwhile
    const int code = app.exec();
    wan::set_log_sink(nullptr);
    session.shutdown();
    session.waitForStopped();
    return code;
}

int runBatch(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend) {
    QCoreApplication app(argc, argv);
    setApplicationNames();
    registerMetaTypes();
    EngineSession session(std::move(backend));  // its destructor shuts the backend down on every path

    GenerationRequest defaults = options.request;
    if (defaults.output_dir.empty()) defaults.output_dir = options.engine.output_dir;
    std::vector<GenerationRequest> jobs;
    try {
        if (!options.batchFile.empty()) {
            jobs = read_batch_file(options.batchFile, defaults);
        } else {
            WAN_CHECK(!defaults.prompt.empty(), "--prompt: the prompt is empty");
            std::vector<std::string> problems = defaults.validate();
            WAN_CHECK(problems.empty(), "%s", problems.empty() ? "" : problems.front().c_str());
            jobs.push_back(defaults);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return BatchRunner::kExitBadInput;
    }

    BatchRunner runner(&session, std::move(jobs));
    QObject::connect(&runner, &BatchRunner::done, &app, [&app](int code) { app.exit(code); }, Qt::QueuedConnection);
    int code = 0;
    {
        // Ctrl+C → runner.interrupt() (exit code 130): the running job is cancelled and the rest skipped; a
        // second Ctrl+C kills at once. Under mpirun the launcher takes Ctrl+C itself and ends every rank; this
        // serves single-process runs.
        StopSignals interrupt({SIGINT}, StopSignals::Second::Kills, &runner, [&runner] { runner.interrupt(); });
        runner.setInterruptRequested([] { return StopSignals::raised(); });  // also checked before each job
        session.start();
        runner.start();
        code = runner.isDone() ? runner.exitCode() : app.exec();
    }
    session.shutdown();
    session.waitForStopped();
    return code;
}

}  // namespace wan::app
