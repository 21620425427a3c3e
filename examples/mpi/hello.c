/*
 * MPI hello world for a slurmkit cluster: every rank reports where it runs, then all
 * ranks take part in one collective (MPI_Allreduce of their rank numbers), so a run that
 * prints the sum proves the ranks really talk to each other across nodes.
 *
 *   mpicc -O2 -o hello hello.c
 *   srun --mpi=pmix -N8 ./hello
 *
 * (why each setting: README.md next to this file)
 */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  int rank, size, len, sum = 0;
  char host[MPI_MAX_PROCESSOR_NAME];

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(host, &len);

  printf("rank %d of %d on %s\n", rank, size, host);
  fflush(stdout);

  /* Every rank contributes its number; everyone gets 0 + 1 + ... + (size-1). */
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("allreduce sum of ranks = %d (expected %d)\n", sum, size * (size - 1) / 2);
    fflush(stdout);
  }

  MPI_Finalize();
  return sum == size * (size - 1) / 2 ? 0 : 1;
}
