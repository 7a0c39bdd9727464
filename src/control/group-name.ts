/**
 * Group names as the config allows them (DESIGN §3), for the control
 * protocol's parameter checks and smoothctl's command line. No imports:
 * smoothctl loads this on its fast path (`status`), which never needs the
 * method table in methods.ts.
 */
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
