// The window's LoRA list: add a safetensors file, set its strength, enable/disable or remove it. The enabled
// rows, in order, are the job's `loras` (GenerationRequest); the engine merges them (engine/lora). With a
// two-expert model (Wan2.2 A14B) an "Expert" column says where each row goes: both experts (`loras`), the
// high-noise expert only (`loras_high`) or the low-noise one (`loras_low`), as --lora / --lora-high / --lora-low.
#pragma once

#include "core/core.h"

#include <QWidget>

#include <vector>

class QLabel;
class QTableWidget;
class QToolButton;

namespace wan::app {

/// Which experts of a two-expert model a LoRA row is merged into.
enum class LoraExpert { Both = 1, HighNoise = 2, LowNoise = 3 };

class LoraListWidget : public QWidget {
    Q_OBJECT
public:
    explicit LoraListWidget(QWidget* parent = nullptr);

    /// The enabled LoRAs of the rows marked `expert`, top to bottom, whether the rows are shown or not.
    std::vector<LoraSpec> loras(LoraExpert expert = LoraExpert::Both) const;
    /// Replaces the list (every row enabled): `both`, then `high`, then `low`, each row marked for its expert.
    void setLoras(const std::vector<LoraSpec>& both, const std::vector<LoraSpec>& high = {},
                  const std::vector<LoraSpec>& low = {});
    /// One row at the end; `enabled` false keeps it listed but out of the job.
    void addLora(const LoraSpec& lora, bool enabled = true, LoraExpert expert = LoraExpert::Both);
    void removeRow(int row);
    /// The row's expert (Both for a row out of range).
    LoraExpert expertOf(int row) const;

    /// A two-expert model shows the Expert column. A one-expert model hides it and the rows marked for one
    /// expert: they stay (for the next two-expert model) and the note under the list says how many are hidden.
    void setTwoExperts(bool twoExperts);
    bool showsExperts() const { return twoExperts_; }

    QTableWidget* table() const { return table_; }
    QToolButton* addButton() const { return add_; }
    QToolButton* removeButton() const { return remove_; }
    QLabel* hiddenNote() const { return hiddenNote_; }

private:
    void browseForFile();
    /// The column, the rows and the note, after the model or the rows changed.
    void updateExpertView();

    QTableWidget* table_ = nullptr;
    QToolButton* add_ = nullptr;
    QToolButton* remove_ = nullptr;
    QLabel* hiddenNote_ = nullptr;
    bool twoExperts_ = false;
};

}  // namespace wan::app
