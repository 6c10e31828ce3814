// The status bar's model-load panel: while the engine loads, a progress bar over the whole load (every component's
// bytes), the file being read and Cancel; after a cancelled load, a button to open a model. Nothing here waits:
// Cancel only asks (EngineSession::cancelStart), and the engine says when it has stopped.
#pragma once

#include "core/load_progress.h"

#include <QString>
#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;

namespace wan::app {

class LoadPanel : public QWidget {
    Q_OBJECT
public:
    explicit LoadPanel(QWidget* parent = nullptr);

    QProgressBar* progressBar() const { return bar_; }
    QPushButton* cancelButton() const { return cancel_; }
    QPushButton* openModelButton() const { return openModel_; }
    /// "Loading the DiT: diffusion_pytorch_model.safetensors" (the full path in the tooltip).
    static QString statusText(const LoadProgress& progress);

public slots:
    /// Loading has begun (no sizes yet): a busy bar and Cancel.
    void showStarting();
    void showProgress(const wan::LoadProgress& progress);
    /// The load was cancelled: no bar; the button that opens a model.
    void showCancelled();
    /// Loaded or failed: nothing to show.
    void clear();

signals:
    void cancelRequested();
    void openModelRequested();

private:
    QProgressBar* bar_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QPushButton* openModel_ = nullptr;
};

}  // namespace wan::app
