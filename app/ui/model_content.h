// One connection for "the rows of an item model changed", for widgets that recompute a summary of the whole
// model (the job queue's progress bar, the history's details pane) instead of following each change.
#pragma once

#include <QAbstractItemModel>
#include <QObject>

namespace wan::app {

/// Calls `slot` (a member of `receiver`, or a functor run in `receiver`'s context) whenever rows of `model`
/// are inserted or removed, their data changes or the model is reset.
template <typename Receiver, typename Slot>
void onModelContentChanged(const QAbstractItemModel* model, const Receiver* receiver, Slot slot) {
    QObject::connect(model, &QAbstractItemModel::rowsInserted, receiver, slot);
    QObject::connect(model, &QAbstractItemModel::rowsRemoved, receiver, slot);
    QObject::connect(model, &QAbstractItemModel::dataChanged, receiver, slot);
    QObject::connect(model, &QAbstractItemModel::modelReset, receiver, slot);
}

}  // namespace wan::app
