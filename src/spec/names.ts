/** Name rules shared by the schema and by code that must not load the schema (zod) to check a name. */

/** Cluster names: they become folder names, labels and Slurm's ClusterName. */
export const CLUSTER_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** Cluster user and group ids: Debian's range for people, clear of system accounts and nobody. */
export const MIN_ID = 1000;
export const MAX_ID = 59999;
