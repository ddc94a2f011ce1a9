#[distlock::locked(name = "order:{order_id}", locks = locks)]
fn charge(locks: &distlock::memory::MemoryLock, order_id: u64) -> distlock::Result<()> {
    Ok(())
}

fn main() {}
