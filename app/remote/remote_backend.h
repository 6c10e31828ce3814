// `wanstudio --connect HOST:PORT`: an EngineBackend whose engine runs on another machine behind
// `wanstudio --listen`. The window and EngineSession are unchanged; every call still comes from the session's
// engine thread, which blocks on HTTP here exactly as it blocks on MPI in the local backend.
#pragma once

#include "session/engine_backend.h"

#include <QByteArray>
#include <QString>

#include <memory>

namespace wan::app {

struct RemoteEndpoint {
    QString host = QStringLiteral("127.0.0.1");
    quint16 port = 7860;
    QByteArray token;  ///< sent as "Authorization: Bearer TOKEN" when not empty
    /// The window's output folder: on every (re)connection the server's finished videos missing there are
    /// copied into it (remote/history_sync.h); each job's own folder replaces it. Empty: nothing is copied.
    QString historyFolder;
    QString label() const { return QStringLiteral("%1:%2").arg(host).arg(port); }
};

/// Parses `--connect HOST:PORT` (PORT defaults to 7860). Throws wan::Error naming the option.
RemoteEndpoint parseRemoteEndpoint(const std::string& text);

/// The body the backend POSTs to /api/jobs for `request`: its JSON as a --batch line, without the keys that are
/// local paths (output folder, latents, noise) or this side's job id.
QByteArray remoteJobBody(const GenerationRequest& request);

/// The backend for --connect: jobs are POSTed, polled (progress, ETA; a lost connection is logged and
/// retried, the job keeps running on the server), cancelled with DELETE, and their files fetched into the
/// request's local output folder so that the window plays them from disk as usual. The live preview comes
/// from /api/events?preview=1, "Enhance prompt" from POST /api/extend, the history as said above.
std::unique_ptr<EngineBackend> makeRemoteBackend(const RemoteEndpoint& endpoint);

}  // namespace wan::app
