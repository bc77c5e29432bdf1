"""The end-to-end demo on CPU, from nothing to two fine-tuned students.

  1. write a labeled motion data set as real VP9 videos (tools/make_demo_data.py)
  2. pre-train a tiny teacher with plain VideoMAE
  3. pre-train a tiny AMD student from that frozen teacher (serial D+G)
  4. pre-train a plain VideoMAE student of the same size and epochs
  5. export both students to mmaction2, fine-tune, multi-view test
  6. print both students' top-1

Every training stage is tools/train.py (mmengine Runner, progress/ETA logs,
checkpoints in work_dirs/demo/<stage>). Usage:

    python tools/demo.py [--work-dir work_dirs/demo] [--teacher-epochs 24]
        [--student-epochs 8] [--finetune-epochs 6] [--num-train 240] [--num-val 96]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def train(config, work_dir, data, epochs, extra=()):
    """Run tools/train.py as its own process and return the last checkpoint."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
           osp.join(ROOT, 'configs', 'tiny', config), '--work-dir', work_dir,
           '--cfg-options', f'train_dataloader.dataset.ann_file={data["train"]}',
           f'train_dataloader.dataset.data_prefix.video={data["root"]}',
           f'train_cfg.max_epochs={epochs}', f'default_hooks.checkpoint.interval={epochs}',
           f'param_scheduler.1.T_max={epochs - 1}', f'param_scheduler.1.end={epochs}',
           *extra]
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    return osp.join(work_dir, f'epoch_{epochs}.pth')


def final_losses(work_dir):
    """Last logged training losses from mmengine's scalars.json."""
    logs = sorted(
        osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs if f == 'scalars.json')
    if not logs:
        return {}
    with open(logs[-1]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    last = rows[-1]
    return {k: round(v, 4) for k, v in last.items() if k.startswith('loss')}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    # Defaults: one seed of the reproduction protocol's fixed settings
    # (configs/reproduce/motion_protocol.py), with its two headline students.
    p.add_argument('--teacher-epochs', type=int, default=24)
    p.add_argument('--student-epochs', type=int, default=8)
    p.add_argument('--finetune-epochs', type=int, default=6)
    p.add_argument('--num-train', type=int, default=240)
    p.add_argument('--num-val', type=int, default=96)
    p.add_argument('--skip-finetune', action='store_true')
    a = p.parse_args()
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
    teacher = stage('teacher (VideoMAE)', lambda: train(
        'videomae_teacher_tiny_motion.py', wd('teacher'), data, a.teacher_epochs))
    amd = stage('AMD student', lambda: train(
        'amd_tiny_motion.py', wd('amd_student'), data, a.student_epochs,
        [f'model.teacher.checkpoint={teacher}']))
    mae = stage('VideoMAE student', lambda: train(
        'videomae_student_tiny_motion.py', wd('videomae_student'), data, a.student_epochs))
    for name in ('teacher', 'amd_student', 'videomae_student'):
        losses[name] = final_losses(wd(name))

    results = {}
    if not a.skip_finetune:
        from mmengine.config import Config

        from amd_mmaction.reproduce.v1_run import schedule_for
        from amd_mmaction.reproduce.stages import TINY_FINETUNE, export_and_finetune
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
