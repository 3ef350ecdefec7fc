/** imakit kernel: kernel profiles and the IMA/EVM emulator (deterministic, no I/O). Import from 'imakit/kernel'. */
export * from './appraise.ts';
export * from './audit.ts';
export * from './emulator-core.ts';
export * from './emulator-types.ts';
export * from './emulator.ts';
export * from './evm-flow.ts';
export * from './evm.ts';
export * from './inode-state.ts';
export * from './measure.ts';
export * from './process-measurement.ts';
export * from './profiles.ts';
export * from './scenario.ts';
export * from './workload.ts';
