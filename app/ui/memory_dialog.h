// Engine → Memory…: how the DiT's weights are held (auto, fp8, bf16), a GPU memory limit above which its blocks
// are streamed from host memory, and streaming all of them. Load-time options: the dialog only chooses, and the
// window restarts the engine with them (on every rank, under the running layout) and keeps them in the settings.
#pragma once

#include "launch/memory_options.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;

namespace wan::app {

class MemoryDialog : public QDialog {
    Q_OBJECT
public:
    /// `current`: the options the running engine was loaded with (the fields start there).
    explicit MemoryDialog(const MemoryOptions& current, QWidget* parent = nullptr);

    /// What the fields say now.
    MemoryOptions options() const;
    void setOptions(const MemoryOptions& options);

    QComboBox* dtypeCombo() const { return dtype_; }
    QDoubleSpinBox* maxVramSpin() const { return maxVram_; }
    QCheckBox* offloadBox() const { return offload_; }
    QPushButton* reloadButton() const { return ok_; }

private:
    void update();

    MemoryOptions current_;
    QComboBox* dtype_ = nullptr;
    QDoubleSpinBox* maxVram_ = nullptr;
    QCheckBox* offload_ = nullptr;
    QLabel* note_ = nullptr;
    QPushButton* ok_ = nullptr;
};

}  // namespace wan::app
