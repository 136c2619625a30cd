using System.CommandLine;
using Exo.Inference.Vulkan;

namespace Exo.Cli.Commands;

internal static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "List the Vulkan devices this machine has, with the index --gpu takes, and which one --backend auto would use.");
        command.SetAction(_ =>
        {
            var devices = VulkanDevice.List();
            if (devices.Count == 0)
            {
                Console.WriteLine("no Vulkan device (or no Vulkan loader): models run on the CPU");
                return 0;
            }

            var chosen = VulkanDevice.Preferred(devices, allowCpu: false);
            foreach (var d in devices) Console.WriteLine($"{d}{(d == chosen ? "  <- --backend auto" : "")}");
            if (chosen is null) Console.WriteLine("--backend auto runs on the CPU: the only devices are CPU implementations of Vulkan");
            return 0;
        });
        return command;
    }
}
