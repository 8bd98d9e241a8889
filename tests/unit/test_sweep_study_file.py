"""sweep/study.py: the study's SQLite file appears only whole, so a reader polling the folder (the Web UI's Sweep tab)
never finds a half-written schema and starts writing it too."""

from __future__ import annotations

import optuna

from tuneforge.sweep import folder, study


def test_the_study_file_is_written_aside_and_moved_in_whole(tmp_path, monkeypatch):
    opened = []
    original = optuna.storages.RDBStorage.__init__

    def recording(self, url, *args, **kwargs):
        # what a poll of the folder finds at the moment a storage opens (the Web UI's, every 2 s)
        opened.append((url, folder.study_path(tmp_path).exists(), study.load_stored_study(tmp_path)))
        original(self, url, *args, **kwargs)

    monkeypatch.setattr(optuna.storages.RDBStorage, "__init__", recording)
    study.create_study_file(tmp_path)
    monkeypatch.setattr(optuna.storages.RDBStorage, "__init__", original)

    assert len(opened) == 1
    url, final_existed, polled = opened[0]
    assert url != folder.storage_url(tmp_path) and not final_existed and polled is None
    assert [p.name for p in tmp_path.iterdir()] == [folder.STUDY_FILE]  # nothing left aside
    assert study.load_stored_study(tmp_path) is None  # the tables, no study yet: a reader waits, writes nothing

    optuna.create_study(storage=folder.storage_url(tmp_path), study_name=folder.STUDY_NAME).enqueue_trial({})
    assert len(study.load_stored_study(tmp_path).get_trials()) == 1
