"""Bad-clip policy shared by the decord and DALI data paths.

A bad clip is a file that is missing, cannot be opened or decoded, has no
frames, or is shorter than the sampler needs. What happens to it is one
setting, ``on_bad_clip``:

* ``'skip'``: the clip is replaced by the next good one of the data set
  (index + 1, + 2, ...), so epoch length and batch size stay as they are;
  if decoding fails later, in a batch, the clip is dropped from its batch.
* ``'pad'``: a clip that is merely short is kept and its frame indices are
  filled as the frame sampler says (``SampleFrames.out_of_bound_opt``: loop,
  or ``'repeat_last'`` to pad with the last frame); a clip with nothing to
  pad from (missing, unreadable, zero frames) is skipped as above.
* ``'fail'``: raise :class:`BadClipError` naming the file and the reason.

Every skip and pad is logged (mmengine ``print_log``, level WARNING) and
counted, per reason, in :data:`BAD_CLIPS` (this process) and in the
``bad_clips`` attribute of the data set that met it. The data set's counts
live in shared memory, so they include what DataLoader worker processes met
(:class:`SharedCounts`); :class:`~amd_mmaction.engine.BadClipLogHook` puts
them into the training log.

API for other data sets: build a :class:`BadClipPolicy`, call
:func:`probe_video` / :func:`check_length` (they raise :class:`BadClipError`)
and hand errors to :meth:`BadClipPolicy.handle`, or subclass
:class:`RobustVideoDataset`.
"""
import logging
import os
import os.path as osp
from collections import Counter
from typing import Optional

import torch
from mmengine.logging import print_log

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from amd_mmaction.data.lists import MAX_REPORTED, expected_form, format_errors, scan_video_list
from amd_mmaction.data.probe import BadClipError, check_length

POLICIES = ('skip', 'pad', 'fail')
# reasons that 'pad' can repair: the frames exist, there are just too few
PADDABLE = ('short',)
# process-wide tally of bad clips met, by reason (also reached from collate)
BAD_CLIPS: Counter = Counter()
REASONS = ('missing', 'unreadable', 'no_video', 'zero_frames', 'short', 'decode', 'other')


class SharedCounts:
    """Bad clips per reason, in shared memory: DataLoader worker processes
    (fork or spawn) add to the same table the main process reads. Each
    process writes its own row (main process 0, worker k row k + 1), so no
    lock is needed; rows are summed when read."""

    ROWS = 1 + 256

    def __init__(self):
        self.table = torch.zeros(self.ROWS, len(REASONS), dtype=torch.long).share_memory_()

    def add(self, reason: str) -> None:
        info = torch.utils.data.get_worker_info()
        row = 0 if info is None else 1 + info.id % (self.ROWS - 1)
        col = REASONS.index(reason) if reason in REASONS else len(REASONS) - 1
        self.table[row, col] += 1

    def counter(self) -> Counter:
        return Counter({r: int(n) for r, n in zip(REASONS, self.table.sum(0).tolist()) if n})


def required_frames(transform) -> int:
    """Frames a sampling transform spans: ``(clip_len - 1) * frame_interval
    + 1`` for dense sampling (SampleFrames), ``clip_len`` for segment
    sampling (UniformSample), 1 for anything else."""
    name = type(transform).__name__
    clip_len = int(getattr(transform, 'clip_len', 1) or 1)
    if name == 'SampleFrames':
        return (clip_len - 1) * int(transform.frame_interval) + 1
    if name in ('UniformSample', 'UniformSampleFrames'):
        return clip_len
    return 1


class BadClipPolicy:
    """Applies ``on_bad_clip`` to a :class:`BadClipError`; counts and logs.

    ``shared``: the :class:`SharedCounts` to add to (a data set's, so that
    collate functions count into it); a new table when not given."""

    def __init__(self, on_bad_clip: str = 'skip', shared: Optional[SharedCounts] = None):
        if on_bad_clip not in POLICIES:
            raise ValueError(f'on_bad_clip={on_bad_clip!r} is not one of {POLICIES}')
        self.policy = on_bad_clip
        self.shared = shared if shared is not None else SharedCounts()

    @property
    def counts(self) -> Counter:
        """Per reason, summed over this process and its DataLoader workers."""
        return self.shared.counter()

    @property
    def total(self) -> int:
        return int(self.shared.table.sum())

    def handle(self, err: BadClipError) -> str:
        """Return the action taken (``'skip'`` or ``'pad'``) or re-raise."""
        if self.policy == 'fail':
            raise err
        action = 'pad' if (self.policy == 'pad' and err.reason in PADDABLE) else 'skip'
        self.shared.add(err.reason)
        BAD_CLIPS[err.reason] += 1
        print_log(f'{action} {err} [{self.total} bad clips so far: '
                  f'{dict(self.counts)}]', logger='current', level=logging.WARNING)
        return action


def read_annotation(ann_file: str, video_prefix: Optional[str] = None,
                    num_classes: Optional[int] = None, multi_class: bool = False,
                    delimiter: str = ' ', check_files: bool = False,
                    on_bad_line: str = 'fail', require_label: bool = False) -> list:
    """Parse an mmaction2 video list (``<path> [<label> ...]`` per line)
    with errors naming ``file:line``, the text and what was expected
    (:func:`~amd_mmaction.data.lists.scan_video_list`).

    A line mmaction2 would misread (tab / comma separated, empty or extra
    fields), a non-integer or out-of-range label, no label
    (``require_label``) or (``check_files``) a video that does not exist is
    an error under ``on_bad_line='fail'`` (all bad lines in one message),
    and a logged, counted, dropped line under ``'skip'``. A file with no
    usable line is always an error. A line with only a path is unlabeled
    (label -1), as in mmaction2. Each dict carries its ``list_line``.
    """
    if on_bad_line not in ('fail', 'skip'):
        raise ValueError(f"on_bad_annotation={on_bad_line!r} is not 'fail' or 'skip'")
    data_list, errors, bad = [], [], 0
    for entry, err in scan_video_list(ann_file, video_prefix, num_classes, multi_class,
                                      delimiter, require_label, check_files):
        if err is None:
            data_list.append(dict(filename=entry.path, label=entry.label,
                                  list_line=entry.lineno))
            continue
        bad += 1
        if on_bad_line == 'fail':
            if len(errors) < MAX_REPORTED:
                errors.append(err)
            continue
        print_log(f'skip annotation line {err} [{bad} bad lines so far]',
                  logger='current', level=logging.WARNING)
    if errors:
        raise ValueError(format_errors(ann_file, errors, bad))
    if not data_list:
        why = f' ({bad} bad lines skipped)' if bad else ' (the file is empty)'
        raise ValueError(f'annotation file {ann_file!r} lists no usable video{why}; '
                         + expected_form(num_classes, multi_class, delimiter))
    return data_list


@DATASETS.register_module()
class RobustVideoDataset(VideoDataset):
    """mmaction2 ``VideoDataset`` with the ``on_bad_clip`` policy.

    The pipeline runs transform by transform; once a transform has set
    ``total_frames`` (DecordInit, ProbeVideo) the length is checked against
    the frame sampler's span. Exceptions of any transform are bad clips of
    reason ``decode``. ``bad_clips`` counts them per reason.

    The annotation file is checked when loaded (:func:`read_annotation`):
    ``on_bad_annotation='fail'`` (default) raises naming ``file:line`` for a
    bad label, a wrong field count or (``check_files=True``) a missing
    video; ``'skip'`` logs, counts and drops the line. An empty list is
    always an error. Without ``check_files`` a missing video is a bad clip
    (reason ``missing``) when it is read. ``check_files=True`` also meets
    0-byte videos at load: the bad-clip policy applies (``'fail'`` raises
    :class:`BadClipError`; ``'skip'``/``'pad'`` log, count (``unreadable``)
    and drop the line). ``require_label=True``: a line with only a path is
    an error (fine-tuning and test lists). Labels are checked against
    ``num_classes`` here when given, and against the model's
    ``cls_head.num_classes`` before the run by
    :class:`~amd_mmaction.engine.hooks.data_check.DataListCheckHook`.
    """

    def __init__(self, *args, on_bad_clip: str = 'skip',
                 max_refetch: int = 100, on_bad_annotation: str = 'fail',
                 check_files: bool = False, require_label: bool = False, **kwargs):
        self.policy = BadClipPolicy(on_bad_clip)
        self.on_bad_annotation = on_bad_annotation
        self.check_files = check_files
        self.require_label = require_label
        super().__init__(*args, max_refetch=max_refetch, **kwargs)
        samplers = [required_frames(t) for t in self.pipeline.transforms]
        self.min_frames = max(samplers) if samplers else 1

    @property
    def bad_clips(self) -> Counter:
        """Bad clips met so far, per reason, by this data set in this
        process and in its DataLoader worker processes."""
        return self.policy.counts

    def load_data_list(self) -> list:
        """The annotation file, checked line by line (see
        :func:`read_annotation`; ``on_bad_annotation``, ``check_files``)."""
        data_list = read_annotation(self.ann_file, self.data_prefix.get('video'),
                                    self.num_classes, self.multi_class, self.delimiter,
                                    self.check_files, self.on_bad_annotation,
                                    self.require_label)
        if not self.check_files:
            return data_list
        kept = []
        for d in data_list:  # 0-byte videos: the bad-clip policy, before training
            if os.stat(d['filename']).st_size == 0:
                self.policy.handle(BadClipError(
                    d['filename'], 'unreadable',
                    f'0-byte file, listed at {self.ann_file}:{d["list_line"]}'))
                continue
            kept.append(d)
        if not kept:
            raise ValueError(f'annotation file {self.ann_file!r}: every listed video is a '
                             '0-byte file')
        return kept

    def _run_pipeline(self, results: dict) -> Optional[dict]:
        path = results['filename']
        if not osp.exists(path):
            raise BadClipError(path, 'missing', 'no such file')
        checked = False
        for t in self.pipeline.transforms:
            try:
                results = t(results)
            except BadClipError:
                raise
            except Exception as e:
                raise BadClipError(path, 'decode', f'{type(t).__name__}: '
                                   f'{type(e).__name__}: {e}') from e
            if results is None:
                return None
            if not checked and 'total_frames' in results:
                checked = True
                try:
                    check_length(path, int(results['total_frames']), self.min_frames)
                except BadClipError as err:
                    if self.policy.handle(err) == 'skip':
                        return None
        return results

    def prepare_data(self, idx: int) -> Optional[dict]:
        results = self.get_data_info(idx)
        try:
            return self._run_pipeline(results)
        except BadClipError as err:
            self.policy.handle(err)  # raises under 'fail'
            return None

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        # deterministic replacement (next index), in train and test mode
        for step in range(self.max_refetch + 1):
            data = self.prepare_data((idx + step) % len(self))
            if data is not None:
                return data
        raise RuntimeError(f'{self.max_refetch + 1} clips in a row from index '
                           f'{idx} are bad (see the warnings above); '
                           f'counts: {dict(self.bad_clips)}')
