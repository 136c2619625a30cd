namespace Exo.Inference.Vulkan;

/// <summary>
/// How the matrix × vector kernel (matmul.comp) is laid out on a device: <paramref name="Subgroups"/> subgroups a
/// workgroup (G) and <paramref name="BatchPass"/> activation rows a pass of a decode batch (NB). Neither changes an
/// output's arithmetic, only how fast it runs and how long the kernel takes to build.
/// </summary>
internal sealed record MatVecLayout(uint Subgroups, uint BatchPass)
{
    /// <summary>Most subgroups a workgroup may have; most activation rows a pass may take.</summary>
    public const uint MaxSubgroups = 8, MaxBatchPass = 8;

    /// <summary>
    /// A GPU: 4 subgroups, enough invocations per row to keep many reads of the weights in flight (one subgroup a
    /// workgroup leaves most of the chip idle); 8 sequences a pass, each weight read once for all of them.
    /// </summary>
    public static readonly MatVecLayout Gpu = new(4, 8);

    /// <summary>
    /// A CPU implementation (lavapipe), which runs a workgroup on one core: one subgroup, since more only adds idle lanes
    /// (and barriers, which llvmpipe compiles into coroutines); 2 sequences a pass, since its compile time grows faster
    /// than the unrolled code of a pass and its caches serve the re-read weights.
    /// </summary>
    public static readonly MatVecLayout Cpu = new(1, 2);

    public static MatVecLayout For(GpuKind kind) => kind == GpuKind.Cpu ? Cpu : Gpu;

    /// <summary>Checks the layout; throws where the kernel cannot take it.</summary>
    public MatVecLayout Validated() =>
        Subgroups is < 1 or > MaxSubgroups ? throw new ArgumentOutOfRangeException(nameof(Subgroups), Subgroups, $"1 to {MaxSubgroups} subgroups")
        : BatchPass is < 1 or > MaxBatchPass ? throw new ArgumentOutOfRangeException(nameof(BatchPass), BatchPass, $"1 to {MaxBatchPass} rows a pass")
        : this;

    /// <summary>
    /// Lanes whose activation chunks a batch's workgroup stages in shared memory at a time (XS): with several subgroups,
    /// the most, a power of two up to 32 and the subgroup, whose chunks of a pass (512 bytes a lane for 8 rows) fit in
    /// <paramref name="sharedBytes"/> beside the G² · NB · 4 sums; with one, the subgroup (nothing is staged).
    /// </summary>
    public uint StagedLanes(uint subgroupSize, uint sharedBytes)
    {
        if (Subgroups == 1) return subgroupSize;
        var sums = Subgroups * Subgroups * BatchPass * 2 * 2 * sizeof(float);
        for (var lanes = Math.Min(32u, subgroupSize); lanes >= 1; lanes /= 2)
            if (sums + lanes * BatchPass * 8 * 16 <= sharedBytes) return lanes;
        throw new GpuUnavailableException($"{sharedBytes} bytes of shared memory are too few for the matrix × vector kernel with {Subgroups} subgroups");
    }
}
