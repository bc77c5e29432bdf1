"""The end-to-end quick start on CPU, from nothing to two fine-tuned students.

  1. write a labeled motion data set as real VP9 videos (tools/make_demo_data.py)
  2. pre-train a tiny teacher with plain VideoMAE
  3. pre-train a tiny AMD student from that frozen teacher (serial D+G)
  4. pre-train a plain VideoMAE student of the same size and epochs
  5. export both students to mmaction2, fine-tune, multi-view test
  6. print both students' top-1

Every stage is one of the reproduction protocol's (amd_mmaction.reproduce.
stages): the installed configs/tiny configs trained through mmengine's Runner
(progress/ETA logs, checkpoints in work_dirs/demo/<stage>). Not to be confused
with demo/demo.py (mmaction2's inference demo on one video). Usage:

    python tools/quickstart.py [--work-dir work_dirs/demo] [--teacher-epochs 24]
        [--student-epochs 8] [--finetune-epochs 6] [--num-train 240] [--num-val 96]
"""
import argparse
import gc
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def pretrain(config, work_dir, data, epochs, extra=None):
    """Pre-train the config ``tiny/<config>`` on ``data`` for ``epochs``
    (its own batch, seed and schedule shape); return the last checkpoint and
    the last logged losses (4 decimals)."""
    from amd_mmaction.reproduce.stages import pretrain_config, scalar_log, train_runner
    cfg = pretrain_config(f'tiny/{config}', data, work_dir, epochs, extra=extra)
    res = train_runner(cfg)
    del res['runner']
    gc.collect()
    rows = scalar_log(work_dir)
    last = rows[-1] if rows else {}
    return res['checkpoint'], {k: round(v, 4) for k, v in last.items() if k.startswith('loss')}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    # Defaults: one seed of protocol v1's fixed settings (docs/reproduce.md,
    # history), with its two headline students.
    p.add_argument('--teacher-epochs', type=int, default=24)
    p.add_argument('--student-epochs', type=int, default=8)
    p.add_argument('--finetune-epochs', type=int, default=6)
    p.add_argument('--num-train', type=int, default=240)
    p.add_argument('--num-val', type=int, default=96)
    p.add_argument('--skip-finetune', action='store_true')
    a = p.parse_args(argv)
    t0 = time.time()
    times, losses = {}, {}
    from amd_mmaction.data.synthetic import make_motion_dataset
    data = make_motion_dataset(osp.join(a.work_dir, 'data'), a.num_train, a.num_val,
                               num_frames=24, size=64, ext='webm', seed=0)
    times['data'] = time.time() - t0

    def stage(name, fn):
        s = time.time()
        out = fn()
        times[name] = time.time() - s
        print(f'[demo] {name} done in {times[name]:.0f}s', flush=True)
        return out

    wd = lambda name: osp.join(a.work_dir, name)  # noqa: E731
    teacher, losses['teacher'] = stage('teacher (VideoMAE)', lambda: pretrain(
        'videomae_teacher_tiny_motion.py', wd('teacher'), data, a.teacher_epochs))
    amd, losses['amd_student'] = stage('AMD student', lambda: pretrain(
        'amd_tiny_motion.py', wd('amd_student'), data, a.student_epochs,
        {'model.teacher.checkpoint': teacher}))
    mae, losses['videomae_student'] = stage('VideoMAE student', lambda: pretrain(
        'videomae_student_tiny_motion.py', wd('videomae_student'), data, a.student_epochs))

    results = {}
    if not a.skip_finetune:
        from mmengine.config import Config

        from amd_mmaction.reproduce.stages import (TINY_FINETUNE, export_and_finetune,
                                                   schedule_for)
        epochs = {'train_cfg.max_epochs': a.finetune_epochs,
                  'train_cfg.val_interval': a.finetune_epochs,
                  'param_scheduler': schedule_for(Config.fromfile(TINY_FINETUNE),
                                                  a.finetune_epochs)}
        for name, ckpt in (('AMD', amd), ('VideoMAE', mae)):
            r = stage(f'fine-tune {name}', lambda: export_and_finetune(
                ckpt, data, wd(f'finetune_{name.lower()}'), **epochs))
            results[name] = r['top1']

    print('\n========== amd-mmaction demo ==========')
    print('final pre-training losses:')
    for name, l in losses.items():
        print(f'  {name:17s} {l}')
    for name, top1 in results.items():
        print(f'{name:9s} student: top-1 {100 * top1:.1f}% (multi-view test, '
              f'{a.num_val} clips, chance {100 / 6:.1f}%)')
    print('wall time: ' + ', '.join(f'{k} {v:.0f}s' for k, v in times.items())
          + f'; total {time.time() - t0:.0f}s')
    print(f'checkpoints: {amd} | {mae}')
    with open(osp.join(a.work_dir, 'demo_summary.json'), 'w') as f:
        json.dump(dict(losses=losses, top1=results, seconds=times,
                       total_seconds=time.time() - t0), f, indent=1)


if __name__ == '__main__':
    main()
