// Heavy reliability checks run at full size under `npm run test:stress` (SPECSERVE_STRESS=1), short in `npm test`.
export const STRESS = process.env.SPECSERVE_STRESS === '1';
export const scale = (short: number, full: number) => (STRESS ? full : short);
