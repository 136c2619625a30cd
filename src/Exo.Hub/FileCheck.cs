using System.Security.Cryptography;
using System.Text;

namespace Exo.Hub;

/// <summary>
/// Checks a file's bytes, as they are written, against what its listing says: the size, and the SHA-256 (hub LFS files,
/// peers' files) or the git blob id (the ETag of a file the hub keeps in git: SHA-1 of "blob SIZE\0" and the bytes).
/// Hashing while writing saves reading the file a second time.
/// </summary>
internal sealed class FileCheck : IDisposable
{
    private readonly ModelFile _file;
    private readonly IncrementalHash? _hash;
    private long _length;

    public FileCheck(ModelFile file)
    {
        _file = file;
        if (file.Sha256 is not null) _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        else if (file.ETag is { Length: 40 })
        {
            _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            _hash.AppendData(Encoding.ASCII.GetBytes($"blob {file.Size}\0"));
        }
    }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        _hash?.AppendData(bytes);
        _length += bytes.Length;
    }

    /// <summary>Adds the first <paramref name="length"/> bytes of a part an earlier run left.</summary>
    public async Task AppendFileAsync(string path, long length, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
        var buffer = new byte[256 * 1024];
        for (var left = length; left > 0;)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken);
            if (n == 0) throw new IOException($"{path} became shorter while it was read");
            Append(buffer.AsSpan(0, n));
            left -= n;
        }
    }

    /// <summary>Why the bytes do not match the listing; null when they do.</summary>
    public string? Mismatch()
    {
        if (_length != _file.Size) return $"is {_length} bytes but was listed as {_file.Size}";
        if (_hash is null) return null;
        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        return _file.Sha256 is { } sha256
            ? actual == sha256 ? null : $"has SHA-256 {actual} but was listed with {sha256}"
            : actual == _file.ETag ? null : $"has git blob id {actual} but was listed with ETag {_file.ETag}";
    }

    public void Dispose() => _hash?.Dispose();
}
