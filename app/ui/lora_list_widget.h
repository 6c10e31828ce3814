// The window's LoRA list: add a safetensors file, set its strength, enable/disable or remove it. The enabled
// rows, in order, are the job's `loras` (GenerationRequest); the engine merges them (engine/lora).
#pragma once

#include "core/core.h"

#include <QWidget>

#include <vector>

class QTableWidget;
class QToolButton;

namespace wan::app {

class LoraListWidget : public QWidget {
    Q_OBJECT
public:
    explicit LoraListWidget(QWidget* parent = nullptr);

    /// The enabled LoRAs, top to bottom.
    std::vector<LoraSpec> loras() const;
    /// Replaces the list (every row enabled).
    void setLoras(const std::vector<LoraSpec>& loras);
    /// One row at the end; `enabled` false keeps it listed but out of the job.
    void addLora(const LoraSpec& lora, bool enabled = true);
    void removeRow(int row);

    QTableWidget* table() const { return table_; }
    QToolButton* addButton() const { return add_; }
    QToolButton* removeButton() const { return remove_; }

private:
    void browseForFile();

    QTableWidget* table_ = nullptr;
    QToolButton* add_ = nullptr;
    QToolButton* remove_ = nullptr;
};

}  // namespace wan::app
