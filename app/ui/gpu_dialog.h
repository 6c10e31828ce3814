// Engine → GPUs…: the GPUs this machine has, how many to use, the layout proposed for the loaded model
// (app/launch/layout_proposal.h) and the exact command that starts it. The dialog only chooses; the window
// relaunches itself with command() on OK (or, in dry-run mode, only shows it).
#pragma once

#include "core/core.h"
#include "launch/gpu_probe.h"
#include "launch/launcher.h"
#include "launch/layout_proposal.h"

#include <QDialog>
#include <QStringList>

class QCheckBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace wan::app {

struct GpuDialogSetup {
    QVector<GpuInfo> gpus;     ///< probeGpus(); empty on a machine without NVIDIA GPUs
    QString probeNote;         ///< why the list is empty
    qint64 numHeads = 12;      ///< the loaded DiT's attention heads
    QString modelName;         ///< for the text ("1.3B")
    EngineInfo current;        ///< the running engine's layout
    QString executable;        ///< this program
    QStringList arguments;     ///< its arguments (layout options are replaced)
    QString mpirun = QStringLiteral("mpirun");
    bool asRoot = false;       ///< add --allow-run-as-root
};

class GpuDialog : public QDialog {
    Q_OBJECT
public:
    explicit GpuDialog(const GpuDialogSetup& setup, QWidget* parent = nullptr);

    int gpuCount() const;
    void setGpuCount(int count);
    /// The proposed layout for the chosen count (FSDP as the check box says).
    LayoutProposal proposal() const;
    /// What starts that layout (mpirun … or, for one GPU, this program alone).
    LaunchCommand command() const;
    /// Problems of proposal() (empty: valid); OK is disabled otherwise.
    QStringList problems() const { return problems_; }

    QSpinBox* countBox() const { return count_; }
    QCheckBox* fsdpBox() const { return fsdp_; }
    QLabel* layoutLabel() const { return layout_; }
    QPlainTextEdit* commandView() const { return command_; }

private:
    void update();

    GpuDialogSetup setup_;
    QSpinBox* count_ = nullptr;
    QCheckBox* fsdp_ = nullptr;
    QLabel* layout_ = nullptr;
    QPlainTextEdit* command_ = nullptr;
    QPushButton* ok_ = nullptr;
    QStringList problems_;
    bool fsdpTouched_ = false;
};

}  // namespace wan::app
