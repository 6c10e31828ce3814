// File → Open model…: choose an upstream checkpoint folder, or single files (DiT, T5, VAE and optionally the
// tokenizer and the DiT's config.json, ComfyUI style, fp8 included; each file replaces the folder's). The
// dialog shows what every file is and the model they make (cli/model_probe.h) and offers "Load" only when
// they fit together; otherwise it says why. It only chooses: the window restarts the engine with choice().
// The files' headers are read on a worker thread, never on the GUI thread.
#pragma once

#include "cli/model_probe.h"

#include <QDialog>

class QFormLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;

namespace wan::app {

class OpenModelDialog : public QDialog {
    Q_OBJECT
public:
    /// `initial`: the fields to start from (the loaded model, or a recent one); probed at once.
    explicit OpenModelDialog(const ModelChoice& initial = {}, QWidget* parent = nullptr);

    /// What the fields say now.
    ModelChoice choice() const;
    /// Fills the fields and probes them.
    void setChoice(const ModelChoice& choice);
    /// The last finished probe of the fields (may be of older fields while isProbing()).
    const ModelProbe& probe() const { return probe_; }
    bool isProbing() const { return probing_; }

    QLineEdit* folderEdit() const { return folder_; }
    QLineEdit* ditEdit() const { return dit_; }
    QLineEdit* ditConfigEdit() const { return ditConfig_; }
    QLineEdit* t5Edit() const { return t5_; }
    QLineEdit* vaeEdit() const { return vae_; }
    QLineEdit* tokenizerEdit() const { return tokenizer_; }
    QLabel* familyLabel() const { return family_; }
    QLabel* problemsLabel() const { return problems_; }
    QPlainTextEdit* componentsView() const { return components_; }
    QPushButton* loadButton() const { return load_; }

public slots:
    /// Probes the fields again (on a worker thread); probeFinished() follows.
    void reprobe();

signals:
    void probeFinished();

private:
    QLineEdit* addPathRow(QFormLayout* form, const QString& label, const QString& objectName, bool folder,
                          const QString& filter);
    void showProbe(quint64 generation, const ModelProbe& probe);

    QLineEdit* folder_ = nullptr;
    QLineEdit* dit_ = nullptr;
    QLineEdit* ditConfig_ = nullptr;
    QLineEdit* t5_ = nullptr;
    QLineEdit* vae_ = nullptr;
    QLineEdit* tokenizer_ = nullptr;
    QLabel* family_ = nullptr;
    QLabel* problems_ = nullptr;
    QPlainTextEdit* components_ = nullptr;
    QPushButton* load_ = nullptr;
    ModelProbe probe_;
    quint64 generation_ = 0;  ///< the newest probe started; older results are dropped
    bool probing_ = false;
};

}  // namespace wan::app
